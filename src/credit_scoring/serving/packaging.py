"""Writing the package the service loads: what the package stage calls.

The files, their names and the manifest are :mod:`credit_scoring.serving.package`'s; this module
assembles them from the pipeline's artifacts (DataFrames, the model card), which the service
itself never needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.atomic import atomic_path, write_json, write_text
from credit_scoring.contract.tables import KEY, Table
from credit_scoring.features.descriptions import describe
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.features.frames import history_rows
from credit_scoring.modelling.calibration import Calibration
from credit_scoring.modelling.card import model_card
from credit_scoring.modelling.cross_validation import top_importance
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.serving.package import (
    APPLICATIONS,
    CALIBRATION,
    CARD,
    INPUTS,
    KNOWN_HISTORY,
    KNOWN_IDS,
    MANIFEST,
    MODEL,
    REASONS,
    SCHEMA,
    SCORECARD,
    THRESHOLD,
    Manifest,
    PackageError,
    file_hashes,
)
from credit_scoring.serving.reasons import ReasonCodes
from credit_scoring.serving.requests import RequestSchema


def stored_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column as :class:`~credit_scoring.serving.package.Applications` stores it: whole
    numbers as int64, other numbers as float64 (NaN for missing), labels as text ("" missing)."""
    columns = {}
    for name, column in frame.items():
        if pd.api.types.is_integer_dtype(column):
            columns[name] = column.to_numpy(dtype="int64")
        elif pd.api.types.is_numeric_dtype(column):
            columns[name] = column.to_numpy(dtype="float64", na_value=np.nan)
        else:
            columns[name] = column.astype(object).where(column.notna(), "").to_numpy(dtype=str)
    return columns


def training_ranges(features: pd.DataFrame, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The lowest and highest value of each named column the model was developed on.

    Missing values are left out, and so is a column that is missing throughout.
    """
    out = {}
    for name in names:
        present = features[name].dropna()
        if len(present):
            out[name] = (float(present.min()), float(present.max()))
    return out


def write_package(
    folder: Path,
    *,
    model_text: str,
    calibration: Calibration,
    schema: FeatureSchema,
    inputs: RequestSchema,
    decision: ThresholdDecision,
    scorecard: Scorecard,
    card: Mapping[str, Any],
    known_ids: np.ndarray,
    known_history: np.ndarray,
    applications: pd.DataFrame,
) -> dict[str, str]:
    """Write the package's files into ``folder``; returns each file's SHA-256.

    ``known_ids`` (sorted) and ``known_history`` (their aggregate rows in schema order) are the
    applicants a request may name by ``client_id``; ``applications`` the stored application
    fields of those a screen may look up.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_text(model_text, folder / MODEL)
    write_json(calibration.to_dict(), folder / CALIBRATION)
    write_json(ReasonCodes.default().to_dict(), folder / REASONS)
    write_json(schema.to_dict(), folder / SCHEMA)
    write_json(decision.to_dict(), folder / THRESHOLD)
    write_json(scorecard.to_dict(), folder / SCORECARD)
    write_json(inputs.to_dict(), folder / INPUTS)
    write_json(dict(card), folder / CARD)
    if np.any(np.diff(known_ids) <= 0):
        raise PackageError("known_ids must be sorted and unique")
    for name, array in ((KNOWN_IDS, known_ids), (KNOWN_HISTORY, known_history)):
        with atomic_path(folder / name) as tmp, tmp.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(array))
    with atomic_path(folder / APPLICATIONS) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **stored_columns(applications[[KEY, *schema.inputs, *schema.audited]]))
    return file_hashes(folder)


def build_package(
    folder: Path,
    *,
    name: str,
    model_text: str,
    calibration: Calibration,
    schema: FeatureSchema,
    decision: ThresholdDecision,
    scorecard: Scorecard,
    holdout_report: Mapping[str, Any],
    contract: Table,
    required: Sequence[str],
    train: pd.DataFrame,
    oof: tuple[np.ndarray, np.ndarray],
    known_ids: np.ndarray,
    test: pd.DataFrame,
    aggregates: pd.DataFrame,
    data: Mapping[str, Any],
    compare: Sequence[str],
    importance_top: int,
    curve_points: int,
    bins: int,
    fitting: Mapping[str, Any],
) -> Manifest:
    """Assemble everything the service needs into ``folder``, with its manifest.

    ``train`` is the development feature table and ``oof`` its labels and calibrated out-of-fold
    scores (for the card, with ``holdout_report``); ``known_ids`` the applicants a request may
    name (development, hold-out and test), whose history ``aggregates`` holds; ``test`` the raw
    test applications (for look-up); ``contract`` the application table's contract and
    ``required`` the fields no decision is made without (for the request checks, with the
    inputs' ranges in ``train``); ``scorecard`` the points scale of the score; ``fitting``
    which applicants the model was fitted on, for the card. The inputs are ordered most
    important first, as a form shows them.
    """
    booster = lgb.Booster(model_str=model_text)
    hashes = write_package(
        folder,
        model_text=model_text,
        calibration=calibration,
        schema=schema,
        inputs=RequestSchema.from_contract(
            contract,
            schema,
            order=[row["feature"] for row in top_importance(booster, n=booster.num_feature())],
            describe=describe,
            seen=training_ranges(train, schema.numeric),
            required=required,
        ),
        decision=decision,
        scorecard=scorecard,
        card=model_card(
            booster=booster,
            features=train,
            oof=oof,
            decision=decision,
            holdout=holdout_report,
            data=data,
            compare=compare,
            importance_top=importance_top,
            curve_points=curve_points,
            bins=bins,
            fitting=fitting,
        ),
        known_ids=np.unique(known_ids),
        known_history=history_rows(aggregates, np.unique(known_ids), schema),
        applications=test,
    )
    manifest = Manifest.of(name, hashes)
    write_json(manifest.to_dict(), folder / MANIFEST)
    return manifest
