"""Fair lending: age bands, and group rates with the adverse impact ratio worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from credit_scoring.contract.tables import TARGET, SchemaError
from credit_scoring.validation.fairness import FOUR_FIFTHS, age_bands, group_table

YEAR = 365.25


def test_age_bands():
    days = -YEAR * np.array([18, 24.99, 25, 39.99, 40, 61.99, 62, 90, np.nan])
    assert age_bands(days).tolist() == [
        "<25",
        "<25",
        "25-39",
        "25-39",
        "40-61",
        "40-61",
        ">=62",
        ">=62",
        "unknown",
    ]
    assert age_bands(-YEAR * np.array([30.0, 70.0]), edges_years=[65]).tolist() == ["<65", ">=65"]
    with pytest.raises(ValueError, match="whole years"):
        age_bands([-10000.0], edges_years=(25.5, 40))


def decisions():
    # Group A, 10 applicants: defaulters 2, one of them refused; no good payer refused.
    #   approval 9/10 = 0.9, FNR (defaulters approved) 1/2, FPR (good payers refused) 0/8.
    # Group B, 10 applicants: defaulters 4, three refused; one of 6 good payers refused.
    #   approval 6/10 = 0.6, FNR 1/4, FPR 1/6.
    # Group C, 3 applicants, all good payers, all refused: approval 0, no defaulter, so no FNR.
    # Group D, 2 applicants, both good payers, both approved: approval 1.
    y = np.concatenate([[1, 1, *[0] * 8], [1, 1, 1, 1, *[0] * 6], [0, 0, 0], [0, 0]])
    refused = np.concatenate([[1, 0, *[0] * 8], [1, 1, 1, 0, 1, *[0] * 5], [1, 1, 1], [0, 0]])
    group = np.array(["A"] * 10 + ["B"] * 10 + ["C"] * 3 + ["D"] * 2, dtype=object)
    return y, refused, group


def test_adverse_impact_by_hand():
    y, refused, group = decisions()
    table = group_table(y, refused, {"group": group}, min_applicants=5)
    assert list(table.columns) == [
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
    rows = table.set_index("group")
    assert rows["applicants"].tolist() == [10, 10, 3, 2]
    np.testing.assert_allclose(rows["approval_rate"], [0.9, 0.6, 0.0, 1.0])
    np.testing.assert_allclose(rows["false_negative_rate"], [1 / 2, 1 / 4, np.nan, np.nan])
    np.testing.assert_allclose(rows["false_positive_rate"], [0, 1 / 6, 1, 0])
    # C and D are small (fewer than 5): D's 100% is not the reference, A's 90% is.
    # B: 0.6 / 0.9 = 0.667 < 0.8, flagged. C: 0 / 0.9 = 0, small, so shown but not flagged.
    np.testing.assert_allclose(rows["adverse_impact_ratio"], [1, 0.6 / 0.9, 0, 1 / 0.9])
    ratio = rows.loc["B", "adverse_impact_ratio"]
    assert ratio == pytest.approx(0.667, abs=1e-3)
    assert ratio < FOUR_FIFTHS
    assert rows["small"].tolist() == [False, False, True, True]
    assert rows["flagged"].tolist() == [False, True, False, False]


def test_missing_values_are_a_group_and_attributes_stack():
    y, refused, group = decisions()
    group[:10] = None
    table = group_table(y, refused, {"group": group, "everyone": np.full(y.size, "all")})
    assert table["attribute"].tolist() == ["group"] * 4 + ["everyone"]
    assert "missing" in table["group"].tolist()
    # With the default of 30 every group is small and none is flagged.
    assert table["small"].all() and not table["flagged"].any()


def test_bad_decisions_raise_naming_the_column():
    y, refused, group = decisions()
    with pytest.raises(SchemaError, match="different lengths"):
        group_table(y, refused[:-1], {"group": group})
    with pytest.raises(SchemaError, match="different lengths"):
        group_table(y, refused, {"group": group[:-1]})
    with pytest.raises(SchemaError) as raised:
        group_table(np.where(y == 1, 2, 0), refused, {"group": group})
    assert raised.value.column == TARGET
