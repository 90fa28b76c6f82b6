"""Whether today's applicants look like the ones the model was validated on: PSI and CSI.

The population stability index compares two distributions bin by bin,
``PSI = sum((current - reference) * ln(current / reference))`` over the shares in each bin. On
the score it says whether the population moved; on each characteristic (the CSI) it says which
inputs moved it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from credit_scoring.contract.tables import SchemaError
from credit_scoring.modelling.scores import one_per_applicant

# The conventional reading: below 0.10 stable, from 0.10 worth watching, from 0.25 shifted.
PSI_WATCH = 0.10
PSI_SHIFTED = 0.25
# An empty bin's share is raised to 0.01% so its term stays finite: a bin holding 1% of one
# set and none of the other adds about 0.046, enough to show, not enough to swamp the index.
FLOOR = 1e-4


def _numbers(values: npt.ArrayLike, table: str, column: str) -> np.ndarray:
    one_per_applicant(values, table, column)
    series = pd.Series(values)  # keeps a nullable dtype's NA as missing, not as an object
    if not pd.api.types.is_numeric_dtype(series):
        raise SchemaError(table, column, f"expected numbers, found dtype {series.dtype}")
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _numeric_counts(reference: np.ndarray, current: np.ndarray, bins: int) -> list[np.ndarray]:
    known = reference[~np.isnan(reference)]
    # Interior quantiles of the reference, each an upper bound: a run of equal values (many
    # zeros, say) collapses its edges into one and stays in one bin.
    edges = (
        np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1]))
        if known.size
        else np.empty(0)
    )
    missing = edges.size + 1
    return [
        np.bincount(
            np.where(np.isnan(x), missing, np.searchsorted(edges, x, side="left")),
            minlength=missing + 1,
        )
        for x in (reference, current)
    ]


def _category_counts(
    reference: npt.ArrayLike, current: npt.ArrayLike, column: str
) -> list[np.ndarray]:
    parts = [
        one_per_applicant(values, table, column).astype(object)
        for table, values in (("reference", reference), ("current", current))
    ]
    codes = pd.factorize(np.concatenate(parts), use_na_sentinel=True)[0] + 1  # missing: bin 0
    bins = int(codes.max()) + 1
    return [
        np.bincount(codes[: parts[0].size], minlength=bins),
        np.bincount(codes[parts[0].size :], minlength=bins),
    ]


def psi(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    bins: int = 10,
    categorical: bool = False,
    column: str = "values",
) -> float:
    """The population stability index of ``current`` against ``reference``.

    Numbers are binned at the reference's quantiles (at most ``bins`` bins, fewer when values
    repeat), so each bin starts with an equal share of the reference. With ``categorical``,
    each distinct value (a category or its code) is a bin of its own. Missing values always
    form one more bin: a feature that starts arriving empty has moved. Shares are floored at
    :data:`FLOOR` so an empty bin costs a finite amount.

    Raises:
        SchemaError: naming ``column`` if either set is empty, not one-dimensional, or, unless
            ``categorical``, not numeric.
    """
    if categorical:
        counts = _category_counts(reference, current, column)
    else:
        counts = _numeric_counts(
            _numbers(reference, "reference", column), _numbers(current, "current", column), bins
        )
    ref, cur = (np.maximum(c / c.sum(), FLOOR) for c in counts)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def reading(value: float) -> str:
    """The conventional reading of a PSI: "stable", "watch" or "shifted"."""
    if np.isnan(value):
        raise ValueError("a PSI cannot be NaN")
    if value < PSI_WATCH:
        return "stable"
    return "watch" if value < PSI_SHIFTED else "shifted"


def characteristic_stability(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    categorical: Collection[str] = (),
) -> pd.DataFrame:
    """The PSI of each feature (the characteristic stability index), with its reading.

    A feature is binned by category when listed in ``categorical`` (category codes, flags
    stored as integers) or when its dtype is not numeric or boolean; otherwise by quantiles.
    One row per feature, in the order given.

    Raises:
        SchemaError: if a feature is missing from either frame, or as :func:`psi`.
    """
    rows = []
    for feature in features:
        for table, frame in (("reference", reference), ("current", current)):
            if feature not in frame.columns:
                raise SchemaError(table, feature, "missing column")
        dtype = reference[feature].dtype
        by_category = (
            feature in categorical
            or not pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        )
        value = psi(reference[feature], current[feature], categorical=by_category, column=feature)
        rows.append({"feature": feature, "psi": value, "reading": reading(value)})
    return pd.DataFrame(rows, columns=["feature", "psi", "reading"])
