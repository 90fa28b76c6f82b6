"""Rank ordering: band tables, capture and lift by hand, deciles, inversions, the Jeffreys test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from credit_scoring.contract.tables import SchemaError
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.validation.rank_ordering import band_table, deciles, inversions, jeffreys_test

ORDER = ("low", "medium", "high", "very high")


def hand_table() -> pd.DataFrame:
    # low: 4 applicants at p = 0.05, no default; medium: 4 at 0.2, one default; high: 2 at 0.5,
    # one default; very high: nobody. 10 applicants, 2 defaults, an overall rate of 0.2.
    y = np.concatenate([[0, 0, 0, 0], [1, 0, 0, 0], [1, 0]])
    p = [0.05] * 4 + [0.2] * 4 + [0.5] * 2
    bands = np.array(["low"] * 4 + ["medium"] * 4 + ["high"] * 2)
    return band_table(y, p, bands, ORDER)


def test_band_table_by_hand():
    table = hand_table()
    assert list(table.columns) == [
        "band",
        "applicants",
        "defaults",
        "default_rate",
        "mean_pd",
        "captured",
        "lift",
    ]
    assert table["band"].tolist() == list(ORDER)
    assert table["applicants"].tolist() == [4, 4, 2, 0]
    assert table["defaults"].tolist() == [0, 1, 1, 0]
    np.testing.assert_allclose(table["default_rate"], [0, 1 / 4, 1 / 2, np.nan])
    np.testing.assert_allclose(table["mean_pd"], [0.05, 0.2, 0.5, np.nan])
    # Captured, counting from the riskiest band down: very high 0/2, high 1/2, medium 2/2, low 2/2.
    np.testing.assert_allclose(table["captured"], [1, 1, 0.5, 0])
    # Lift, the band's rate over 0.2: 0/0.2, 0.25/0.2, 0.5/0.2, and none for the empty band.
    np.testing.assert_allclose(table["lift"], [0, 1.25, 2.5, np.nan])


def test_band_table_refuses_unknown_bands_and_bad_scores():
    with pytest.raises(SchemaError, match="outside") as raised:
        band_table([0, 1], [0.1, 0.2], np.array(["low", "extreme"]), ORDER)
    assert raised.value.column == "band"
    with pytest.raises(SchemaError, match="different lengths"):
        band_table([0, 1], [0.1, 0.2], np.array(["low"]), ORDER)
    with pytest.raises(SchemaError) as raised:
        band_table([0, 1], [0.1, np.nan], np.array(["low", "low"]), ORDER)
    assert raised.value.column == PROBABILITY


def test_deciles_hold_equal_counts_in_score_order():
    p = np.random.default_rng(0).permutation(np.linspace(0.01, 0.99, 200))
    labels, order = deciles(p)
    assert order == [str(d) for d in range(1, 11)]
    assert pd.Series(labels).value_counts().to_dict() == dict.fromkeys(order, 20)
    rank = np.array([order.index(label) for label in labels])
    assert np.all(np.diff(rank[np.argsort(p)]) >= 0)  # riskier applicants, higher deciles


def test_deciles_keep_ties_together_whatever_the_row_order():
    # 30 of 100 applicants share p = 0.05: all 30 land in decile 1, leaving 2 and 3 empty.
    p = np.r_[np.full(30, 0.05), np.linspace(0.1, 0.9, 70)]
    labels, order = deciles(p)
    assert set(labels[:30]) == {"1"}
    assert {"2", "3"}.isdisjoint(labels)
    shuffle = np.random.default_rng(1).permutation(100)
    assert np.array_equal(deciles(p[shuffle])[0], labels[shuffle])
    table = band_table(np.zeros(100), p, labels, order)
    assert table.loc[table["band"] == "2", "applicants"].item() == 0


def test_inversions_by_hand():
    table = pd.DataFrame(
        {
            "band": ["1", "2", "3", "4", "5", "6"],
            "applicants": [100, 100, 100, 0, 100, 100],
            "default_rate": [0.01, 0.03, 0.02, np.nan, 0.05, 0.05],
        }
    )
    # 2 -> 3 falls; the empty band 4 is skipped, so 3 -> 5 rises; 5 -> 6 does not rise.
    assert inversions(table) == [("2", "3"), ("5", "6")]
    assert inversions(hand_table()) == []


def test_jeffreys_test():
    table = pd.DataFrame(
        {
            "band": ["right", "underestimated", "none", "all", "empty"],
            "applicants": [1000, 1000, 50, 5, 0],
            "defaults": [20, 20, 0, 5, 0],
            "mean_pd": [0.02, 0.10, 0.001, 0.9, np.nan],
        }
    )
    result = jeffreys_test(table)
    # 20 defaults in 1000: the interval is about [1.3%, 3.0%], so a mean PD of 2% is inside and
    # one of 10% is far outside.
    low = stats.beta.ppf(0.025, 20.5, 980.5)
    high = stats.beta.ppf(0.975, 20.5, 980.5)
    assert result.loc[0, "low"] == pytest.approx(low)
    assert result.loc[0, "high"] == pytest.approx(high)
    assert 0.012 < low < 0.02 < high < 0.031
    # No default: low = 0 by convention; every default: high = 1. The empty band has no interval.
    assert result.loc[2, "low"] == 0 and result.loc[3, "high"] == 1
    assert np.isnan(result.loc[4, ["low", "high"]].astype(float)).all()
    assert result["passes"].tolist() == [True, False, True, True, True]
    assert "low" not in table.columns  # the input is left as it was
