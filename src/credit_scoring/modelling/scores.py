"""The checks of scored applicants (outcomes and probabilities) that every figure relies on.

A NaN probability or a label of 2 would not fail loudly inside a threshold search, a Gini or a
PSI; it would shift the figure a reviewer signs off. The threshold and the validation statistics
therefore check their inputs here and raise :class:`SchemaError` naming the table and the column
to look at.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from credit_scoring.contract.tables import TARGET, SchemaError
from credit_scoring.modelling.cross_validation import PROBABILITY

REFUSED = "refused"


def _offenders(values: np.ndarray, bad: np.ndarray) -> str:
    first = int(np.argmax(bad))
    return f"{int(bad.sum())} bad value(s), first {values[first].item()!r} at row {first}"


def one_per_applicant(values: npt.ArrayLike, table: str, column: str | None) -> np.ndarray:
    """The values as a non-empty 1-D array, or :class:`SchemaError` naming where they came from."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise SchemaError(table, column, f"expected one value per applicant, shape {array.shape}")
    if array.size == 0:
        raise SchemaError(table, column, "no applicants")
    return array


def same_length(table: str, **columns: np.ndarray) -> None:
    """Raise :class:`SchemaError` unless every column has one value per applicant."""
    sizes = {name: values.size for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{size} {name}" for name, size in sizes.items())
        raise SchemaError(table, None, f"columns of different lengths: {found}")


def checked_labels(y: npt.ArrayLike, table: str = "scores", column: str = TARGET) -> np.ndarray:
    """Outcomes as int64 0/1 (1 = default), or :class:`SchemaError`."""
    y = one_per_applicant(y, table, column)
    if y.dtype != bool and not np.issubdtype(y.dtype, np.number):
        raise SchemaError(table, column, f"expected 0 or 1, found dtype {y.dtype}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise SchemaError(table, column, f"values must be 0 or 1, {_offenders(y, bad)}")
    return y.astype("int64")


def checked_probabilities(p: npt.ArrayLike, table: str = "scores") -> np.ndarray:
    """Probabilities of default as float64 in [0, 1], or :class:`SchemaError`."""
    p = one_per_applicant(p, table, PROBABILITY)
    if p.dtype == bool or not np.issubdtype(p.dtype, np.number):
        raise SchemaError(table, PROBABILITY, f"expected numbers, found dtype {p.dtype}")
    bad = ~np.isfinite(p)
    if bad.any():
        raise SchemaError(table, PROBABILITY, f"values must be finite, {_offenders(p, bad)}")
    bad = (p < 0) | (p > 1)
    if bad.any():
        raise SchemaError(table, PROBABILITY, f"values must be in [0, 1], {_offenders(p, bad)}")
    return p.astype("float64")


def checked_scores(
    y: npt.ArrayLike, p: npt.ArrayLike, table: str = "scores"
) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes (int64 0/1) and probabilities (float64), one each per applicant."""
    y, p = checked_labels(y, table), checked_probabilities(p, table)
    same_length(table, **{TARGET: y, PROBABILITY: p})
    return y, p


def both_classes(y: np.ndarray, table: str = "scores") -> None:
    """Raise unless there are defaulters and good payers: separation needs both to compare."""
    defaults = int(y.sum())
    if defaults in (0, y.size):
        raise SchemaError(
            table, TARGET, f"needs defaulters and good payers, found {defaults} of {y.size}"
        )
