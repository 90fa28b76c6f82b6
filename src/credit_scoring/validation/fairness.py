"""Fair-lending checks: approval and error rates by group, and the four-fifths rule.

The decision is "refuse when p >= threshold", so refusing is the positive prediction: the false
negative rate is the share of defaulters approved, the false positive rate the share of good
payers refused. The adverse impact ratio divides a group's approval rate by the highest one of
its attribute; below four fifths it is the conventional sign of disparate impact. The rates
come from fairlearn's ``MetricFrame``, one per attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)

from credit_scoring.contract.tables import TARGET, SchemaError
from credit_scoring.modelling.scores import (
    REFUSED,
    checked_labels,
    one_per_applicant,
    same_length,
)

FOUR_FIFTHS = 0.8
MIN_APPLICANTS = 30
MISSING = "missing"
UNKNOWN_AGE = "unknown"
DAYS_BIRTH = "DAYS_BIRTH"
DAYS_PER_YEAR = 365.25
COLUMNS = [
    "attribute",
    "group",
    "applicants",
    "approval_rate",
    "false_negative_rate",
    "false_positive_rate",
    "adverse_impact_ratio",
    "small",
    "flagged",
]


def age_bands(days_birth: npt.ArrayLike, edges_years: Sequence[float] = (25, 40, 62)) -> np.ndarray:
    """Each applicant's age band, from Home Credit's ``DAYS_BIRTH`` (days before application).

    Edges are whole years, each the first age of its band: the defaults give "<25", "25-39",
    "40-61" and ">=62", the last being the age from which US fair-lending rules protect older
    applicants. A missing birth date gives "unknown".

    Raises:
        SchemaError: if ``days_birth`` is empty or not numeric.
        ValueError: if the edges are not increasing whole years.
    """
    edges = np.asarray(edges_years, dtype="float64")
    if edges.size == 0 or np.any(np.diff(edges) <= 0) or np.any(edges != np.round(edges)):
        raise ValueError(f"edges must be increasing whole years, got {list(edges_years)}")
    days = one_per_applicant(days_birth, "applicants", DAYS_BIRTH)
    if days.dtype == bool or not np.issubdtype(days.dtype, np.number):
        raise SchemaError("applicants", DAYS_BIRTH, f"expected numbers, found dtype {days.dtype}")
    years = -days.astype("float64") / DAYS_PER_YEAR
    labels = [
        f"<{edges[0]:g}",
        *(f"{low:g}-{high - 1:g}" for low, high in pairwise(edges)),
        f">={edges[-1]:g}",
    ]
    banded = np.asarray(labels, dtype=object)[np.searchsorted(edges, years, side="right")]
    banded[np.isnan(years)] = UNKNOWN_AGE
    return banded


def _defaults(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return int(np.sum(y_true))


# Refused (1) is the positive prediction, so the approval rate is the selection rate of 0.
METRICS = {
    "applicants": count,
    "defaults": _defaults,
    "approval_rate": partial(selection_rate, pos_label=0),
    "false_negative_rate": partial(false_negative_rate, pos_label=1),
    "false_positive_rate": partial(false_positive_rate, pos_label=1),
}


def _groups(values: npt.ArrayLike, attribute: str) -> pd.Series:
    groups = pd.Series(one_per_applicant(values, "applicants", attribute).astype(object))
    return groups.where(groups.notna(), MISSING).astype(str).rename("group")


def group_table(
    y: npt.ArrayLike,
    refused: npt.ArrayLike,
    groups: Mapping[str, npt.ArrayLike],
    *,
    min_applicants: int = MIN_APPLICANTS,
) -> pd.DataFrame:
    """Approval and error rates per group of each attribute, with the adverse impact ratio.

    One row per (attribute, group), missing values forming the group "missing". A group of
    fewer than ``min_applicants`` is kept and its ratio shown, but it is marked ``small`` and
    never ``flagged``, and it is not the reference the others are divided by: a rate over a
    handful of applicants is noise, and flagging on it would send reviewers after nothing.
    A rate a group cannot have (the false negative rate of a group without defaulters) is NaN.

    Raises:
        SchemaError: on labels other than 0/1, decisions other than 0/1, or columns of
            different lengths.
    """
    y = checked_labels(y, "decisions")
    refused = checked_labels(refused, "decisions", REFUSED)
    same_length("decisions", **{TARGET: y, REFUSED: refused})
    tables = []
    for attribute, values in groups.items():
        members = _groups(values, attribute)
        same_length("decisions", **{TARGET: y, attribute: members.to_numpy()})
        table = MetricFrame(
            metrics=METRICS, y_true=y, y_pred=refused, sensitive_features=members
        ).by_group
        table["small"] = table["applicants"] < min_applicants
        judged = table.loc[~table["small"], "approval_rate"]
        best = (judged if len(judged) else table["approval_rate"]).max()
        table["adverse_impact_ratio"] = table["approval_rate"] / best if best > 0 else np.nan
        table["flagged"] = ~table["small"] & (table["adverse_impact_ratio"] < FOUR_FIFTHS)
        good = table["applicants"] - table["defaults"]
        table["false_negative_rate"] = table["false_negative_rate"].where(table["defaults"] > 0)
        table["false_positive_rate"] = table["false_positive_rate"].where(good > 0)
        tables.append(table.reset_index().assign(attribute=attribute))
    result = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    return result[COLUMNS].astype({"applicants": "int64", "small": bool, "flagged": bool})
