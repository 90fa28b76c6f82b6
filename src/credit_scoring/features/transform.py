"""The one transform from a raw application (plus its history aggregates) to a model row.

The features stage calls :func:`transform` on every applicant at once (through
:func:`credit_scoring.features.frames.feature_frame`); the service calls it on the one applicant
of a request. Both hand it plain columns of numpy arrays, so there is no second implementation
to drift apart and no per-request DataFrame to pay for, and the service needs numpy only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from credit_scoring.contract.tables import DAYS_PLACEHOLDER
from credit_scoring.features.feature_schema import ENGINEERED, NOT_APPLICABLE, FeatureSchema

EXT_SOURCES = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
CONTACT_FLAGS = (
    "FLAG_MOBIL",
    "FLAG_EMP_PHONE",
    "FLAG_WORK_PHONE",
    "FLAG_CONT_MOBILE",
    "FLAG_PHONE",
    "FLAG_EMAIL",
)
# The engineered ratios, numerator over denominator, in ENGINEERED order. None divides by age
# (DAYS_BIRTH): employment over age, the public kernels' DAYS_EMPLOYED_PERC, gives an older
# applicant with the same tenure a lower value, and on the default data pushed some applicants
# aged 62+ toward refusal, which Regulation B (12 CFR 1002.6(b)(2)) forbids. Age enters the model
# once, as DAYS_BIRTH, under a monotone constraint.
RATIOS = (
    ("AMT_CREDIT", "AMT_INCOME_TOTAL"),
    ("AMT_ANNUITY", "AMT_INCOME_TOTAL"),
    ("AMT_ANNUITY", "AMT_CREDIT"),
    ("AMT_GOODS_PRICE", "AMT_CREDIT"),
    ("AMT_INCOME_TOTAL", "CNT_FAM_MEMBERS"),
)


def columns_from_records(
    records: Sequence[Mapping[str, Any]], schema: FeatureSchema
) -> dict[str, np.ndarray]:
    """Raw columns of a few JSON-like records; absent or null fields are missing values.

    The numbers go into one matrix in one call (None becomes NaN), which is what keeps a
    single-applicant request cheap; the columns are views of it.
    """
    numbers = np.array(
        [[r.get(name) for name in schema.numeric] for r in records], dtype="float64"
    ).reshape(len(records), len(schema.numeric))
    columns = dict(zip(schema.numeric, numbers.T, strict=True))
    for name in schema.categorical:
        columns[name] = np.array([r.get(name) for r in records], dtype=object)
    return columns


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """A ratio that is missing, never infinite, when the denominator is zero or missing, or
    so small that the ratio overflows."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    with np.errstate(over="ignore"):
        np.divide(num, den, out=out, where=(den != 0) & ~np.isnan(den))
    out[np.isinf(out)] = np.nan
    return out


def _row_stats(stack: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over the available values of each row; missing where none is available.

    All at once, as one request would otherwise pay the same masks once per statistic.
    """
    present = ~np.isnan(stack)
    count = present.sum(axis=1)
    some = count > 0
    total = np.where(present, stack, 0.0).sum(axis=1)
    mean = _divide(total, count.astype("float64"))
    squared = np.where(present, (stack - mean[:, None]) ** 2, 0.0).sum(axis=1)
    return {
        "count": count.astype("float64"),
        "sum": np.where(some, total, np.nan),
        "mean": mean,
        "std": np.sqrt(_divide(squared, count - 1.0)),
        "min": np.where(some, np.where(present, stack, np.inf).min(axis=1), np.nan),
        "max": np.where(some, np.where(present, stack, -np.inf).max(axis=1), np.nan),
    }


@functools.cache
def _lookup(levels: tuple[str, ...]) -> dict[str, float]:
    """Label to code, built once per level set (a request would otherwise rebuild it)."""
    lookup = {level: float(i) for i, level in enumerate(levels)}
    lookup[NOT_APPLICABLE] = np.nan
    return lookup


def _codes(labels: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """Codes fixed by the contract: missing and XNA are NaN, a level outside it is "unknown"."""
    lookup, unknown = _lookup(levels), float(len(levels))
    return np.array(
        [np.nan if v is None else lookup.get(v, unknown) for v in labels], dtype="float64"
    )


def engineer(raw: Mapping[str, np.ndarray], employed_anomaly: np.ndarray) -> np.ndarray:
    """The hand-made application features, in :data:`ENGINEERED` order.

    ``raw`` holds every numeric input, DAYS_EMPLOYED already cleared of its 365243 placeholder;
    ``employed_anomaly`` says where that placeholder was, so the information is not lost.
    """
    ratios = _divide(
        np.column_stack([raw[num] for num, _ in RATIOS]),
        np.column_stack([raw[den] for _, den in RATIOS]),
    )
    ext = np.column_stack([raw[name] for name in EXT_SOURCES])
    stats = _row_stats(ext)
    documents = np.column_stack([v for k, v in raw.items() if k.startswith("FLAG_DOCUMENT_")])
    contacts = np.column_stack([raw[name] for name in CONTACT_FLAGS])
    return np.column_stack(
        [
            employed_anomaly,
            ratios,
            *(stats[stat] for stat in ("mean", "std", "min", "max")),
            ext.prod(axis=1),
            stats["count"],
            _row_stats(documents)["sum"],
            _row_stats(contacts)["sum"],
        ]
    )


def transform(
    columns: Mapping[str, np.ndarray], history: np.ndarray | None, schema: FeatureSchema
) -> np.ndarray:
    """Raw application columns (and aggregate rows, or None) to the model's feature matrix.

    Args:
        columns: raw fields by name, each an array over the same applicants (numbers as floats
            with NaN, labels as objects with None); absent fields count as missing.
        history: the applicants' aggregate rows in ``schema.aggregates`` order, NaN for an
            applicant without history; None when no applicant has any.
        schema: the feature schema.

    Returns:
        A float64 matrix with the columns of ``schema.features``; categoricals hold codes.
    """
    n = len(next(iter(columns.values()))) if columns else 1
    out = np.full((n, len(schema.features)), np.nan)
    k, c = len(schema.numeric), len(schema.numeric) + len(schema.categorical)
    for j, name in enumerate(schema.numeric):
        if name in columns:
            out[:, j] = columns[name]
    raw = dict(zip(schema.numeric, out[:, :k].T, strict=True))  # views: cleared in place
    employed = raw["DAYS_EMPLOYED"]
    anomaly = np.where(np.isnan(employed), np.nan, (employed == DAYS_PLACEHOLDER).astype("float64"))
    employed[employed == DAYS_PLACEHOLDER] = np.nan
    for j, (name, levels) in enumerate(schema.categorical.items(), start=k):
        if name in columns:
            out[:, j] = _codes(columns[name], levels)
    out[:, c : c + len(ENGINEERED)] = engineer(raw, anomaly)
    if history is not None:
        out[:, c + len(ENGINEERED) :] = history
    return out
