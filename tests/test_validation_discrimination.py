"""Discrimination: Gini and KS checked by hand and against sklearn and scipy, the bootstrap's
interval and its seed, and the errors bad scores raise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from credit_scoring.contract.tables import TARGET, SchemaError
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.validation.discrimination import (
    KS,
    bootstrap_interval,
    discrimination,
    gini,
    ks,
)

# Four good payers and four defaulters.
GOOD = [0.1, 0.3, 0.4, 0.6]
BAD = [0.2, 0.7, 0.8, 0.9]
Y = [0] * 4 + [1] * 4
P = GOOD + BAD


def scored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Applicants whose default depends on a rounded score, so there are ties."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 8, n).round(2)
    return (rng.random(n) < p).astype("int64"), p


def test_gini_by_hand():
    # Of the 16 (defaulter, good payer) pairs the defaulter scores higher in 13: 0.2 beats 0.1
    # only (1), and 0.7, 0.8, 0.9 beat all four (12). AUC = 13/16, Gini = 2 * 13/16 - 1 = 10/16.
    assert gini(Y, P) == pytest.approx(10 / 16)


def test_ks_by_hand():
    # F_good(s) and F_bad(s), the shares scoring <= s, at each distinct score:
    #   s      0.1   0.2   0.3   0.4   0.6   0.7   0.8   0.9
    #   good   1/4   1/4   2/4   3/4   4/4   1     1     1
    #   bad    0     1/4   1/4   1/4   1/4   2/4   3/4   1
    #   gap    1/4   0     1/4   2/4   3/4   2/4   1/4   0     -> 0.75, reached at p = 0.6
    assert ks(Y, P) == KS(statistic=0.75, at=0.6)


def test_ties_count_one_half_and_ks_takes_the_smallest_score():
    y, p = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.8]
    # Pairs (defaulter, good): (0.5, 0.5) a tie: 1/2; (0.5, 0.2), (0.8, 0.5), (0.8, 0.2): 1 each.
    # AUC = 3.5/4, Gini = 0.75.
    assert gini(y, p) == pytest.approx(0.75)
    # The gap is 1/2 at 0.2 (good 1/2, bad 0) and at 0.5 (good 1, bad 1/2): the smaller wins.
    assert ks(y, p) == KS(statistic=0.5, at=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_gini_and_ks_agree_with_sklearn_and_scipy(seed):
    y, p = scored(3000, seed)
    assert gini(y, p) == pytest.approx(2 * roc_auc_score(y, p) - 1, abs=1e-12)
    assert ks(y, p).statistic == pytest.approx(stats.ks_2samp(p[y == 1], p[y == 0]).statistic)


def test_bootstrap_contains_the_estimate_and_follows_its_seed():
    y, p = scored(2000, 0)
    interval = bootstrap_interval(y, p, gini, n=200, seed=1)
    assert interval[0] < gini(y, p) < interval[1]
    assert bootstrap_interval(y, p, gini, n=200, seed=1) == interval
    assert bootstrap_interval(y, p, gini, n=200, seed=2) != interval
    narrow = bootstrap_interval(y, p, gini, n=200, seed=1, level=0.5)
    assert interval[0] < narrow[0] < narrow[1] < interval[1]


def test_bootstrap_keeps_both_classes():
    # One defaulter among 50: a plain resample would often lose it; a stratified one never does.
    y, p = [1] + [0] * 49, np.linspace(0, 1, 50)
    low, high = bootstrap_interval(y, p, gini, n=100, seed=0)
    assert -1 <= low <= high <= 1


def test_discrimination_holds_every_figure():
    y, p = scored(2000, 3)
    result = discrimination(y, p, n_boot=100, seed=0)
    keys = {"gini", "gini_low", "gini_high", "ks", "ks_at", "ks_low", "ks_high", "auc"}
    assert set(result) == keys
    assert result["gini"] == pytest.approx(gini(y, p))
    assert result["auc"] == pytest.approx((result["gini"] + 1) / 2)
    assert (result["ks"], result["ks_at"]) == (ks(y, p).statistic, ks(y, p).at)
    assert result["gini_low"] < result["gini"] < result["gini_high"]
    assert result["ks_low"] <= result["ks"] <= result["ks_high"]


@pytest.mark.parametrize(
    ("y", "p", "column", "words"),
    [
        ([0, 1, 1], [0.1, 0.2], None, "different lengths"),
        ([0, 1], [0.1, float("nan")], PROBABILITY, "finite"),
        ([0, 1], [0.1, 1.2], PROBABILITY, "[0, 1]"),
        ([0, 2], [0.1, 0.2], TARGET, "0 or 1"),
        ([1, 1], [0.1, 0.2], TARGET, "defaulters and good payers"),
        ([], [], TARGET, "no applicants"),
    ],
)
@pytest.mark.parametrize("function", [gini, ks])
def test_bad_scores_raise_naming_the_column(function, y, p, column, words):
    with pytest.raises(SchemaError, match=words) as raised:
        function(y, p)
    assert raised.value.column == column


def test_bootstrap_refuses_a_meaningless_request():
    with pytest.raises(ValueError, match="n must"):
        bootstrap_interval(Y, P, gini, n=0, seed=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(Y, P, gini, n=10, seed=0, level=1.0)
