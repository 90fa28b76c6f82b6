"""Floats that repeat bit for bit, so artifacts (and dvc.lock) do too.

polars' float sums, and Evidently's drift scores, depend on how SIMD kernels happen to split
memory, so their last bits change from run to run (a few ulps). Rounding the mantissa to its top
26 bits (~8 significant digits, far finer than any split LightGBM makes) absorbs that. The grid
is binary, so values that sums of whole numbers produce exactly (232188.125) sit on it, never on
a boundary between two of its points.
"""

from __future__ import annotations

import numpy as np

DROPPED_BITS = 26


def canonical(values: np.ndarray | float) -> np.ndarray:
    """Round float64s to nearest on a 26-bit mantissa; NaN stays NaN."""
    values = np.array(values, dtype="float64")  # a contiguous copy of the same shape
    bits = values.view("uint64")
    rounded = (bits + np.uint64(1 << (DROPPED_BITS - 1))) & ~np.uint64((1 << DROPPED_BITS) - 1)
    return np.where(np.isnan(values), np.nan, rounded.view("float64"))
