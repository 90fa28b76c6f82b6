"""Drift between the applicants the model learnt from and a later batch of applicants.

Evidently compares the raw application columns and the model's strongest engineered and
aggregate features column by column; the model's scores are compared the same way, and the
share of applicants it would refuse is set against the training share. Evidently's cost grows
with rows times columns (minutes on 100k rows by 200 columns), so both populations are
sampled first.

Evidently picks each column's method. With more than 1,000 reference rows: Wasserstein distance
normed by the reference's standard deviation for numeric columns with more than 5 distinct
values, Jensen-Shannon distance for categorical ones and numeric ones with at most 5; both drift
at a distance of 0.1 or more. With 1,000 reference rows or fewer it switches to p-values
(Kolmogorov-Smirnov, chi-square or Z-test; drift when p < 0.05), which depend on the sample size.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.atomic import write_json, write_text
from credit_scoring.contract.tables import (
    CATEGORY,
    DAYS_PLACEHOLDER,
    KEY,
    TARGET,
    Table,
    load_contract,
)
from credit_scoring.features.feature_schema import EMPLOYED_PLACEHOLDER, FeatureSchema
from credit_scoring.features.frames import feature_frame
from credit_scoring.floats import canonical
from credit_scoring.modelling.calibration import Calibration, predict_pd
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.modelling.decision import ThresholdDecision

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

log = logging.getLogger(__name__)

FAIL = "FAIL"  # Evidently's test status for "drift detected"
Scoring = Callable[[np.ndarray], np.ndarray]  # feature rows to the served probability

# Evidently's random ids in its HTML: every widget, tab and graph gets a uuid7 when it is built,
# and the page a "metric_" + uuid4 hex name. uuid7 only, so the bundled scripts' fixed uuids
# (nil, DNS and URL namespaces) are left alone.
_RANDOM_ID = re.compile(
    r"(?<![0-9A-Za-z-])"
    r"(?:(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
    r"|metric_(?P<hex>[0-9a-f]{32}))"
    r"(?![0-9A-Za-z-])"
)


@dataclass(frozen=True)
class DriftColumns:
    """The columns a report compares, with the role Evidently needs to pick a method."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    engineered: tuple[str, ...]  # numeric too; built by the feature transform, not read raw

    @property
    def raw(self) -> tuple[str, ...]:
        return self.numerical + self.categorical

    @property
    def names(self) -> tuple[str, ...]:
        return self.raw + self.engineered

    def without(self, dropped: Sequence[str]) -> DriftColumns:
        """The same roles, less some columns."""
        groups = (self.numerical, self.categorical, self.engineered)
        return DriftColumns(*(tuple(c for c in group if c not in dropped) for group in groups))


def choose_columns(
    applications: Table, gain: Mapping[str, float], top_features: int
) -> DriftColumns:
    """Every raw application column, plus the ``top_features`` other model features by gain.

    A raw column also used as a feature is compared once, in its raw form; a feature the model
    never split on (gain 0) is not important, whatever its rank. The pensioners' placeholder in
    DAYS_EMPLOYED is compared as its flag, the days without it (:func:`describe_population`).

    Args:
        applications: the contract's application table (its dtypes give the roles).
        gain: each model feature's total gain, as ``Booster.feature_importance("gain")``.
        top_features: how many engineered or aggregate features to add.
    """
    raw = [c for c in applications.columns if c.name not in (KEY, TARGET)]
    names = {c.name for c in raw} | {EMPLOYED_PLACEHOLDER}
    others = [name for name, g in gain.items() if g > 0 and name not in names]
    return DriftColumns(
        numerical=tuple(c.name for c in raw if c.dtype != CATEGORY),
        categorical=tuple(c.name for c in raw if c.dtype == CATEGORY),
        engineered=(
            EMPLOYED_PLACEHOLDER,
            *sorted(others, key=lambda name: -gain[name])[:top_features],
        ),
    )


@dataclass(frozen=True)
class Sample:
    """Both populations cut to at most ``size`` rows each, and a note of what was cut."""

    reference: pd.DataFrame
    current: pd.DataFrame
    rows: Mapping[str, int]  # each population's size before sampling
    size: int
    seed: int

    @classmethod
    def draw(cls, reference: pd.DataFrame, current: pd.DataFrame, size: int, seed: int) -> Sample:
        """Draw without replacement; a population of ``size`` rows or fewer is kept whole."""
        cut = [
            frame if len(frame) <= size else frame.sample(n=size, random_state=seed)
            for frame in (reference, current)
        ]
        rows = {"reference": len(reference), "current": len(current)}
        return cls(*(frame.reset_index(drop=True) for frame in cut), rows, size, seed)

    @property
    def ids(self) -> list[int]:
        """The sampled applicants, so only their aggregate rows need reading."""
        return pd.concat([self.reference[KEY], self.current[KEY]]).tolist()

    def to_dict(self) -> dict[str, Any]:
        """What the report was computed on, for drift.json."""
        sampled = {"reference": len(self.reference), "current": len(self.current)}
        return {
            "seed": self.seed,
            "max_rows": self.size,
            **{name: {"rows": n, "sampled": sampled[name]} for name, n in self.rows.items()},
        }


def describe_population(
    applications: pd.DataFrame,
    aggregates: pd.DataFrame,
    *,
    schema: FeatureSchema,
    score: Scoring,
    columns: DriftColumns,
) -> pd.DataFrame:
    """The compared columns of a population, and the served probability of default.

    The features come from :func:`~credit_scoring.features.frames.feature_frame`, the
    transform the model was trained on, so the scores are the ones the service would give.
    DAYS_EMPLOYED's placeholder (365243, the pensioners) is left missing; its flag is compared
    instead, so the days' drift is not the share of pensioners.
    """
    features = feature_frame(applications, aggregates, schema)
    raw = applications[list(columns.raw)].reset_index(drop=True)
    if "DAYS_EMPLOYED" in raw:
        raw["DAYS_EMPLOYED"] = raw["DAYS_EMPLOYED"].mask(raw["DAYS_EMPLOYED"] == DAYS_PLACEHOLDER)
    return pd.concat(
        [
            raw,
            features[list(columns.engineered)],
            pd.DataFrame({PROBABILITY: score(features[list(schema.features)].to_numpy())}),
        ],
        axis=1,
    )


def empty_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns without a single value: Evidently stops the whole report on one of them."""
    return [name for name in columns if frame[name].notna().sum() == 0]


def run_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: DriftColumns, drift_share: float
) -> Snapshot:
    """Evidently's data drift preset on the columns, and the drift of the model's scores.

    The scores are a separate metric, so they show in the report without counting towards the
    share of drifted columns. Keyword arguments: ``Report.run`` takes the current data first.
    Evidently is imported here, not at the top: it takes seconds, and a batch that breaks the
    contract should be turned away at once.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[*columns.numerical, *columns.engineered, PROBABILITY],
        categorical_columns=list(columns.categorical),
    )
    report = Report(
        [
            DataDriftPreset(columns=list(columns.names), drift_share=drift_share),
            ValueDrift(column=PROBABILITY),
        ],
        include_tests=True,
    )
    keep = [*columns.names, PROBABILITY]
    return report.run(
        current_data=Dataset.from_pandas(current[keep], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[keep], data_definition=definition),
    )


def summarise(snapshot: Snapshot) -> dict[str, Any]:
    """Evidently's verdicts in a small, stable JSON shape: overall, per column, the scores.

    Drift flags are Evidently's own test results, not a second reading of the thresholds.
    """
    results = json.loads(snapshot.json())
    failed = {t["metric_config"]["metric_id"] for t in results["tests"] if t["status"] == FAIL}
    dataset, columns = {}, {}
    for metric in results["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            dataset = {
                "drifted_columns": int(metric["value"]["count"]),
                "share_drifted_columns": float(canonical(metric["value"]["share"])),
                "drift_share": config["drift_share"],
                "dataset_drift": metric["id"] in failed,
            }
        elif config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "score": float(canonical(metric["value"])),
                "threshold": config["threshold"],
                "drifted": metric["id"] in failed,
            }
    prediction = columns.pop(PROBABILITY)
    return {
        "dataset": {"columns": len(columns), **dataset},
        "columns": columns,
        "prediction": prediction,
    }


@dataclass(frozen=True)
class DriftResult:
    """A comparison: Evidently's snapshot (for the HTML), its summary, and both populations as
    compared (their columns and served probability of default)."""

    snapshot: Snapshot
    summary: dict[str, Any]
    reference: pd.DataFrame
    current: pd.DataFrame

    @property
    def reference_scores(self) -> np.ndarray:
        return self.reference[PROBABILITY].to_numpy()

    @property
    def current_scores(self) -> np.ndarray:
        return self.current[PROBABILITY].to_numpy()


def compare(
    sample: Sample,
    aggregates: pd.DataFrame,
    *,
    schema: FeatureSchema,
    score: Scoring,
    columns: DriftColumns,
    drift_share: float,
    threshold: float,
) -> DriftResult:
    """Compare a sample of the training applications with one of the applications to check.

    Args:
        sample: both populations, raw with contract dtypes, sampled (:meth:`Sample.draw`).
        aggregates: history aggregates by SK_ID_CURR; applicants without a row have no history.
        schema: the feature schema the model was trained on.
        score: the served probability of default of feature rows.
        columns: what to compare (:func:`choose_columns`).
        drift_share: the share of drifted columns at which the whole dataset counts as drifted.
        threshold: the decision threshold (refuse when probability >= threshold).
    """
    described = {
        name: describe_population(frame, aggregates, schema=schema, score=score, columns=columns)
        for name, frame in (("reference", sample.reference), ("current", sample.current))
    }
    empty = {name: empty_columns(frame, columns.names) for name, frame in described.items()}
    for name, missing in empty.items():
        if missing:
            log.warning("left out of the report, no value in the %s data: %s", name, missing)
    snapshot = run_report(
        described["reference"],
        described["current"],
        columns.without([c for missing in empty.values() for c in missing]),
        drift_share,
    )
    summary = summarise(snapshot)
    scores = {name: frame[PROBABILITY].to_numpy() for name, frame in described.items()}
    summary["prediction"].update(
        decision_threshold=threshold,
        **{f"{name}_share_refused": share_refused(p, threshold) for name, p in scores.items()},
    )
    summary["left_out"] = {f"empty_in_{name}": missing for name, missing in empty.items()}
    summary["sample"] = sample.to_dict()
    return DriftResult(snapshot, summary, described["reference"], described["current"])


def reproducible_html(html: str) -> str:
    """Evidently's report HTML with its random ids replaced by ones numbered in page order.

    Evidently draws a fresh uuid7 for every widget, tab and graph, and a uuid4 for the page,
    so two runs on the same data write different files and DVC sees a new output each time;
    the 0.7 API has no seed for them. The n-th distinct id, counted in order of first
    appearance, becomes n written in the same format (``00000000-0000-7000-8000-<n:012x>``,
    ``metric_<n:032x>``), every occurrence of it alike, so the page's links between widgets and
    graphs still hold. Idempotent.
    """
    numbers: dict[str, int] = {}

    def renumber(match: re.Match[str]) -> str:
        n = numbers.setdefault(match[0], len(numbers) + 1)
        if match["uuid"] is not None:
            return f"00000000-0000-7000-8000-{n:012x}"  # a valid uuid7, time 0
        return f"metric_{n:032x}"

    return _RANDOM_ID.sub(renumber, html)


def share_refused(probability: np.ndarray, threshold: float) -> float:
    """The share of applicants the decision rule refuses (probability >= threshold)."""
    return float(np.mean(probability >= threshold))


def score_histogram(
    reference: np.ndarray, current: np.ndarray, bins: int
) -> list[dict[str, float]]:
    """Each population's share of applicants per score bin, for a DVClive plot.

    Shares rather than counts, so populations of any size compare; the bins stop at the 99.9th
    percentile (the last one takes everything above), since a few extreme scores would otherwise
    squeeze the body of the distribution into a couple of bins.
    """
    upper = float(np.quantile(np.concatenate([reference, current]), 0.999))
    edges = np.linspace(0.0, upper, bins + 1)
    shares = [
        np.histogram(np.clip(p, 0.0, upper), bins=edges)[0] / len(p) for p in (reference, current)
    ]
    centres = (edges[:-1] + edges[1:]) / 2
    return [
        {PROBABILITY: float(c), "reference": float(r), "current": float(k)}
        for c, r, k in zip(centres, *shares, strict=True)
    ]


def assess(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    history: Callable[[Sequence[int]], pd.DataFrame],
    known: np.ndarray | None,
    schema: FeatureSchema,
    booster: lgb.Booster,
    calibration: Calibration,
    decision: ThresholdDecision,
    top_features: int,
    sample: int,
    seed: int,
    drift_share: float,
) -> DriftResult:
    """Sample both populations and compare them: the drift stage's and the batch check's work.

    ``reference`` should be applicants the model was not fitted on (the hold-out), so that both
    populations' scores are out of sample. ``history(ids)`` gives the aggregate rows of those
    applicants that have any. ``known`` lists the applicants whose history is known at all
    (None: every one): when the current population holds others, their history features would
    be empty against full ones, so the history features are left out of the comparison.
    """
    drawn = Sample.draw(reference, current, size=sample, seed=seed)
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    columns = choose_columns(load_contract()["application_test"], gain, top_features)
    unknown = 0 if known is None else int((~np.isin(drawn.current[KEY], known)).sum())
    if unknown:
        columns = columns.without(schema.aggregates)
    result = compare(
        drawn,
        history(drawn.ids),
        schema=schema,
        score=lambda rows: predict_pd(booster, calibration, rows),
        columns=columns,
        drift_share=drift_share,
        threshold=decision.threshold,
    )
    result.summary["prediction"]["training_oof_share_refused"] = decision.refused_share
    result.summary["left_out"]["without_history"] = unknown
    if unknown:
        log.warning(
            "%d current applicants have no known history: history features left out", unknown
        )
    return result


def write_report(result: DriftResult, html: Path, summary: Path) -> None:
    """Evidently's page, its ids made reproducible, and the summary; each written atomically."""
    write_text(reproducible_html(result.snapshot.get_html_str(as_iframe=False)), html)
    write_json(result.summary, summary)
