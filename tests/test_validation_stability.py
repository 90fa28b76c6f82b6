"""Stability: the PSI by hand on two-bin distributions, missing values and new categories, the
conventional reading, and the PSI of each characteristic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.tables import SchemaError
from credit_scoring.validation.stability import (
    FLOOR,
    PSI_SHIFTED,
    PSI_WATCH,
    characteristic_stability,
    psi,
    reading,
)

# Reference [1, 2, 3, 4] in two bins splits at its median 2.5: shares 1/2 and 1/2.
# Current [1, 1, 1, 4]: shares 3/4 and 1/4. Neither has missing values (0 and 0: no term).
# PSI = (3/4 - 1/2) ln((3/4)/(1/2)) + (1/4 - 1/2) ln((1/4)/(1/2)) = 1/4 ln 1.5 + 1/4 ln 2
#     = 1/4 ln 3 = 0.2747.
TWO_BINS = 0.25 * math.log(3)


def test_psi_by_hand():
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(TWO_BINS)
    assert TWO_BINS == pytest.approx(0.2747, abs=1e-4)
    assert reading(TWO_BINS) == "shifted"
    assert psi([1, 2, 3, 4], [4, 3, 2, 1], bins=2) == 0


def test_missing_values_are_a_bin_of_their_own():
    # Current [1, 2, NaN, NaN]: shares 1/2 (<= 2.5), 0 (> 2.5), 1/2 (missing), against the
    # reference's 1/2, 1/2, 0. Empty shares become FLOOR, so two terms of
    # (1/2 - FLOOR) ln((1/2) / FLOOR) remain.
    expected = 2 * (0.5 - FLOOR) * math.log(0.5 / FLOOR)
    assert psi([1, 2, 3, 4], [1, 2, np.nan, np.nan], bins=2) == pytest.approx(expected)
    nullable = pd.Series([1, 2, None, None], dtype="Int64")
    assert psi([1, 2, 3, 4], nullable, bins=2) == pytest.approx(expected)


def test_categories():
    # a, a, b, b against a, a, a, b: the same shares as the two numeric bins above.
    assert psi(list("aabb"), list("aaab"), categorical=True) == pytest.approx(TWO_BINS)
    # A category the reference never saw is a bin of its own: FLOOR against 1/4.
    new = 0.25 * math.log(0.5 / 0.25) + (0.25 - FLOOR) * math.log(0.25 / FLOOR)
    assert psi(list("aabb"), list("aabc"), categorical=True) == pytest.approx(new)


def test_reading_at_the_conventional_edges():
    assert (PSI_WATCH, PSI_SHIFTED) == (0.10, 0.25)
    assert [reading(v) for v in (0.0, 0.0999, 0.10, 0.2499, 0.25, 3.0)] == [
        "stable",
        "stable",
        "watch",
        "watch",
        "shifted",
        "shifted",
    ]
    with pytest.raises(ValueError, match="NaN"):
        reading(float("nan"))


def test_characteristic_stability():
    reference = pd.DataFrame(
        {
            "AMT": [1.0, 2.0, 3.0, 4.0] * 25,
            "CODE": [0, 1, 2, 3] * 25,  # category codes: only equality means anything
            "TYPE": pd.Categorical(list("abab") * 25),
        }
    )
    current = reference.assign(CODE=[0, 0, 0, 3] * 25)
    table = characteristic_stability(reference, current, ["AMT", "CODE", "TYPE"], ["CODE"])
    assert list(table.columns) == ["feature", "psi", "reading"]
    assert table["feature"].tolist() == ["AMT", "CODE", "TYPE"]
    assert table["reading"].tolist() == ["stable", "shifted", "stable"]
    assert table.loc[0, "psi"] == 0
    assert table.loc[1, "psi"] == pytest.approx(psi([0, 1, 2, 3], [0, 0, 0, 3], categorical=True))


def test_bad_inputs_name_the_column():
    frame = pd.DataFrame({"AMT": [1.0, 2.0]})
    with pytest.raises(SchemaError, match="missing column") as raised:
        characteristic_stability(frame, frame.drop(columns="AMT"), ["AMT"])
    assert (raised.value.table, raised.value.column) == ("current", "AMT")
    with pytest.raises(SchemaError, match="expected numbers") as raised:
        psi(["a", "b"], ["a", "b"], column="NAME")
    assert raised.value.column == "NAME"
    with pytest.raises(SchemaError, match="no applicants"):
        psi([], [1.0])
