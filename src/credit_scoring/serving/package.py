"""The package the service loads: every artifact it needs, under a version made of its content.

The package stage writes these files, and a manifest naming their version and hashes, into one
folder that DVC versions (``models/package``). :mod:`credit_scoring.serving.store` puts that
folder into the BentoML model store, its cache; the service (and the FastAPI baseline, and the
tests) read it back with :meth:`Package.load`. Nothing in it is typed twice: the threshold, the
costs and the bands are ``threshold.json`` as the threshold stage wrote it, and the points scale
of the score is ``scorecard.json`` (the cut-off score is the threshold's points, not stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.atomic import atomic_path, write_json, write_parquet, write_text
from credit_scoring.contract.tables import KEY, Table
from credit_scoring.errors import InputError
from credit_scoring.features.descriptions import describe
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.features.transform import history_rows
from credit_scoring.modelling.calibration import Calibration
from credit_scoring.modelling.card import model_card
from credit_scoring.modelling.cross_validation import top_importance
from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.modelling.threshold import ThresholdDecision
from credit_scoring.serving.reasons import ReasonCodes
from credit_scoring.serving.requests import RequestSchema, training_ranges

MODEL, SCHEMA, THRESHOLD = "model.txt", "feature_schema.json", "threshold.json"
INPUTS, CARD, CALIBRATION, REASONS = "inputs.json", "card.json", "calibration.json", "reasons.json"
SCORECARD = "scorecard.json"
KNOWN_IDS, KNOWN_HISTORY, APPLICATIONS = (
    "known_ids.npy",
    "known_history.npy",
    "applications.parquet",
)
FILES = (
    MODEL,
    CALIBRATION,
    REASONS,
    SCHEMA,
    THRESHOLD,
    SCORECARD,
    INPUTS,
    CARD,
    KNOWN_IDS,
    KNOWN_HISTORY,
    APPLICATIONS,
)
MANIFEST = "manifest.json"


class PackageError(InputError, RuntimeError):
    """The package is incomplete or its parts disagree; the service must not start on it."""


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
    stored = [KEY, *schema.inputs, *schema.audited]
    write_parquet(applications[stored].reset_index(drop=True), folder / APPLICATIONS)
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
) -> Manifest:
    """Assemble everything the service needs into ``folder``, with its manifest.

    ``train`` is the development feature table and ``oof`` its labels and calibrated out-of-fold
    scores (for the card, with ``holdout_report``); ``known_ids`` the applicants a request may
    name (development, hold-out and test), whose history ``aggregates`` holds; ``test`` the raw
    test applications (for look-up); ``contract`` the application table's contract and
    ``required`` the fields no decision is made without (for the request checks, with the
    inputs' ranges in ``train``); ``scorecard`` the points scale of the score. The inputs are
    ordered most important first, as a form shows them.
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
        ),
        known_ids=np.unique(known_ids),
        known_history=history_rows(aggregates, np.unique(known_ids), schema),
        applications=test,
    )
    manifest = Manifest.of(name, hashes)
    write_json(manifest.to_dict(), folder / MANIFEST)
    return manifest


def package_version(hashes: Mapping[str, str]) -> str:
    """A version made of the content: two packages differ in version iff a file differs."""
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name}={hashes[name]}\n".encode())
    return digest.hexdigest()[:16]


def file_hashes(folder: Path) -> dict[str, str]:
    """Each package file's SHA-256, as the manifest records them."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@dataclass(frozen=True)
class Manifest:
    """What a package folder is: its name, its content version and each file's SHA-256."""

    name: str
    version: str
    files: Mapping[str, str]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def of(cls, name: str, hashes: Mapping[str, str]) -> Manifest:
        return cls(name=name, version=package_version(hashes), files=dict(hashes))

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "name": self.name, "version": self.version, "files": self.files}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Manifest:
        return cls(name=payload["name"], version=payload["version"], files=payload["files"])

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of a package folder; a missing or unreadable one is a PackageError."""
        path = folder / MANIFEST
        if not path.is_file():
            raise PackageError(
                f"{folder} holds no package ({MANIFEST} missing); `make repro` builds it, "
                "`dvc pull` fetches the one DVC versions"
            )
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as err:
            raise PackageError(f"{path} is not a package manifest: {err}") from None

    def verify(self, folder: Path) -> None:
        """Refuse a folder whose files are not the ones the manifest names (edited, partial)."""
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise PackageError(f"package {folder} lacks {missing}")
        changed = [n for n, h in file_hashes(folder).items() if self.files.get(n) != h]
        if changed or package_version(self.files) != self.version:
            raise PackageError(
                f"package {folder}: {changed or 'the version'} differ from {MANIFEST}; "
                "`dvc checkout` restores the versioned package"
            )


def _model_features(path: Path) -> list[str]:
    """The feature names in a LightGBM text model's header, without loading its trees."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("feature_names="):
                return line.rstrip("\n").removeprefix("feature_names=").split(" ")
            if line.startswith("Tree="):
                break
    raise PackageError(f"{path} is not a LightGBM text model (no feature_names line)")


def check_package(folder: Path) -> FeatureSchema:
    """Refuse a package that is incomplete or whose model, schema and tables disagree.

    Reads file headers only (no trees, no table), so a server can check before it forks its
    workers. Returns the feature schema.
    """
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        raise PackageError(f"package {folder} lacks {missing}; `make repro` packages the model")
    schema = FeatureSchema.from_json((folder / SCHEMA).read_text())
    model_features = _model_features(folder / MODEL)
    if model_features != list(schema.features):
        extra = sorted(set(model_features) - set(schema.features))[:5]
        absent = sorted(set(schema.features) - set(model_features))[:5]
        raise PackageError(
            f"the model has {len(model_features)} features and the feature schema "
            f"{len(schema.features)}, or another order (only in the model: {extra}; "
            f"only in the schema: {absent}); package a model trained on this schema"
        )
    ids = np.load(folder / KNOWN_IDS, mmap_mode="r")
    history = np.load(folder / KNOWN_HISTORY, mmap_mode="r")
    if history.shape != (ids.size, len(schema.aggregates)):
        raise PackageError(
            f"the history table is {history.shape}, but the schema has "
            f"{len(schema.aggregates)} aggregates for {ids.size} applicants"
        )
    if set(read_inputs(folder).fields) != {*schema.inputs, *schema.audited}:
        raise PackageError("inputs.json and the feature schema list different input fields")
    Calibration.from_json((folder / CALIBRATION).read_text())
    read_reasons(folder)
    threshold = ThresholdDecision.from_json((folder / THRESHOLD).read_text()).threshold
    if not 0.0 <= float(threshold) <= 1.0 + 1e-12:
        raise PackageError(f"threshold {threshold} is not a probability")
    Scorecard.from_json((folder / SCORECARD).read_text())
    return schema


def read_inputs(folder: Path) -> RequestSchema:
    """The fields a request may send, as the package states them (``inputs.json``)."""
    return RequestSchema.from_dict(json.loads((folder / INPUTS).read_text()))


def read_reasons(folder: Path) -> ReasonCodes:
    """The reason codes and the officers' override reasons (``reasons.json``)."""
    return ReasonCodes.from_dict(json.loads((folder / REASONS).read_text()))


@dataclass(frozen=True)
class Package:
    """A loaded package: the model, its contracts and the history of known applicants."""

    booster: lgb.Booster
    calibration: Calibration
    reasons: ReasonCodes
    schema: FeatureSchema
    inputs: RequestSchema
    decision: ThresholdDecision
    scorecard: Scorecard
    card: Mapping[str, Any]
    known_ids: np.ndarray
    known_history: np.ndarray
    applications: pd.DataFrame
    version: str
    files: Mapping[str, str]  # each file's SHA-256: what a decision record names it by

    @classmethod
    def load(cls, folder: Path, version: str) -> Package:
        """Load a package folder that :func:`check_package` accepts."""
        check_package(folder)
        return cls(
            booster=lgb.Booster(model_file=str(folder / MODEL)),
            calibration=Calibration.from_json((folder / CALIBRATION).read_text()),
            reasons=read_reasons(folder),
            schema=FeatureSchema.from_json((folder / SCHEMA).read_text()),
            inputs=read_inputs(folder),
            decision=ThresholdDecision.from_json((folder / THRESHOLD).read_text()),
            scorecard=Scorecard.from_json((folder / SCORECARD).read_text()),
            card=json.loads((folder / CARD).read_text()),
            known_ids=np.load(folder / KNOWN_IDS),
            known_history=np.load(folder / KNOWN_HISTORY, mmap_mode="r"),
            applications=pd.read_parquet(folder / APPLICATIONS).set_index(KEY),
            version=version,
            files=file_hashes(folder),
        )

    def held(self, client_ids: Sequence[int]) -> np.ndarray:
        """Whether the package holds each applicant's history (train or test population).

        One search for all of them: a search per applicant, in a loop, would let go of the GIL
        and take it back each time, and a thread doing that starves the others (the event
        loop's among them) for as long as the loop runs.
        """
        return self._positions(client_ids)[1]

    def history(self, client_ids: Sequence[int | None]) -> np.ndarray:
        """Aggregate rows for the given applicants (NaN for None); unknown ids raise KeyError."""
        rows = np.full((len(client_ids), len(self.schema.aggregates)), np.nan)
        wanted = [(i, cid) for i, cid in enumerate(client_ids) if cid is not None]
        if wanted:
            at, held = self._positions([cid for _, cid in wanted])
            if not held.all():
                raise KeyError(wanted[int(np.argmin(held))][1])
            rows[[i for i, _ in wanted]] = self.known_history[at]
        return rows

    def _positions(self, client_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each id's row in the known history, and whether it is there at all."""
        ids = np.asarray(client_ids, dtype="int64").reshape(-1)
        if self.known_ids.size == 0:
            return np.zeros(ids.size, dtype="int64"), np.zeros(ids.size, dtype=bool)
        at = np.searchsorted(self.known_ids, ids).clip(max=self.known_ids.size - 1)
        return at, self.known_ids[at] == ids
