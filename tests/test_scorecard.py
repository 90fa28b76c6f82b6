"""Scorecard points: the industry's scaling, its exact inverse, and contributions in points."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import yaml

from conftest import ROOT
from credit_scoring.config import compose_params
from credit_scoring.errors import ArtifactError, ConfigError
from credit_scoring.modelling.scorecard import Scorecard

DEFAULT = Scorecard(base_score=600, base_odds=50, points_to_double=20)


def p_at_odds(good_to_bad: float) -> float:
    """The probability of default at good:bad odds."""
    return 1 / (1 + good_to_bad)


@pytest.mark.parametrize(("odds", "expected"), [(50, 600), (100, 620), (25, 580), (200, 640)])
def test_the_base_score_at_the_base_odds_and_pdo_per_doubling(odds, expected):
    assert DEFAULT.points(p_at_odds(odds)) == pytest.approx(expected, abs=1e-9)
    assert isinstance(DEFAULT.points(p_at_odds(odds)), float)


def test_factor_and_offset():
    assert DEFAULT.factor == pytest.approx(20 / math.log(2))
    assert DEFAULT.offset == pytest.approx(600 - 20 / math.log(2) * math.log(50))
    assert DEFAULT.points(0.5) == pytest.approx(DEFAULT.offset)  # even odds


def test_points_is_vectorised_and_decreasing_in_the_probability():
    p = np.array([0.001, 0.01, 0.0196, 0.1, 0.5, 0.9])
    scores = DEFAULT.points(p)
    assert isinstance(scores, np.ndarray) and scores.shape == p.shape
    assert np.all(np.diff(scores) < 0)  # a higher score is a lower risk
    np.testing.assert_allclose(scores, [DEFAULT.points(float(x)) for x in p], rtol=0, atol=1e-12)


def test_score_and_probability_round_trip():
    p = np.concatenate([np.logspace(-14, -1e-9, 2000), 1 - np.logspace(-12, -0.5, 500)])
    back = DEFAULT.probability(DEFAULT.points(p))
    np.testing.assert_allclose(back, p, rtol=1e-12, atol=0)
    # Points back from probabilities, where a float still resolves 1 - p (p below 0.999).
    scores = np.linspace(300, 1400, 1001)
    np.testing.assert_allclose(DEFAULT.points(DEFAULT.probability(scores)), scores, rtol=1e-12)
    assert DEFAULT.probability(600.0) == pytest.approx(1 / 51, rel=1e-12)
    assert isinstance(DEFAULT.probability(600.0), float)


def test_certainties_are_clipped_to_finite_scores():
    top, bottom = DEFAULT.points(0.0), DEFAULT.points(1.0)
    assert math.isfinite(top) and math.isfinite(bottom) and top > 1400 and bottom < -500
    assert DEFAULT.probability(top) == pytest.approx(1e-15, rel=1e-9)


def test_the_cutoff_reads_the_rule_in_points():
    threshold = 0.08
    cutoff = DEFAULT.points(threshold)
    p = np.linspace(0.0, 1.0, 10_001)
    scores = DEFAULT.points(p)
    far = np.abs(p - threshold) > 1e-12  # floating-point ties aside
    np.testing.assert_array_equal((p >= threshold)[far], (scores <= cutoff)[far])


def test_contributions_in_points_sum_to_the_score():
    rng = np.random.default_rng(0)
    contributions = rng.normal(scale=0.3, size=(50, 12))  # log-odds of default, base last
    contributions[:, -1] = rng.normal(-2.5, 0.5, size=50)
    log_odds = contributions.sum(axis=1)
    p = 1 / (1 + np.exp(-log_odds))
    in_points = DEFAULT.contribution_points(contributions)
    assert in_points.shape == contributions.shape
    np.testing.assert_allclose(in_points.sum(axis=1), DEFAULT.points(p), rtol=1e-12)
    np.testing.assert_allclose(in_points[:, :-1], -DEFAULT.factor * contributions[:, :-1])
    np.testing.assert_allclose(
        in_points[:, -1], DEFAULT.offset - DEFAULT.factor * contributions[:, -1]
    )
    one = DEFAULT.contribution_points(contributions[0])  # one applicant's row
    np.testing.assert_array_equal(one, in_points[0])
    assert one[0] * contributions[0, 0] < 0  # raising the risk lowers the score


def test_json_round_trip_and_reader_fields():
    card = Scorecard(base_score=650.5, base_odds=30, points_to_double=40)
    assert Scorecard.from_json(json.dumps(card.to_dict())) == card
    assert Scorecard.from_dict({**card.to_dict(), "note": "ignored"}) == card
    described = DEFAULT.describe(p_at_odds(50))
    assert described["cutoff_score"] == pytest.approx(600)
    assert described["factor"] == DEFAULT.factor and described["offset"] == DEFAULT.offset


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"base_odds": 0}, "scorecard.base_odds: must be > 0"),
        ({"base_odds": -5}, "scorecard.base_odds: must be > 0"),
        ({"points_to_double": 0}, "scorecard.points_to_double: must be > 0"),
        ({"points_to_double": -20}, "scorecard.points_to_double: must be > 0"),
        ({"base_score": float("nan")}, "scorecard.base_score: must be finite"),
        ({"base_odds": float("inf")}, "scorecard.base_odds: must be finite"),
        ({"base_score": "600"}, "scorecard.base_score: expected a number"),
        ({"points_to_double": True}, "scorecard.points_to_double: expected a number"),
    ],
)
def test_a_bad_scale_is_a_config_error_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Scorecard.from_dict({**DEFAULT.to_dict(), **raw})
    assert "\n" not in str(caught.value)


def test_a_missing_key_is_named_and_a_bad_file_is_an_artifact_error():
    with pytest.raises(ConfigError, match=re.escape("scorecard.points_to_double: missing")):
        Scorecard.from_dict({"base_score": 600, "base_odds": 50})
    with pytest.raises(ArtifactError, match="scorecard: not readable"):
        Scorecard.from_json("{not json")
    with pytest.raises(ArtifactError, match=re.escape("scorecard.base_odds: must be > 0")):
        Scorecard.from_json(json.dumps({**DEFAULT.to_dict(), "base_odds": 0}))


def test_the_configured_scale_is_the_default():
    params = yaml.safe_load(compose_params(ROOT / "conf"))
    assert Scorecard.from_dict(params["scorecard"]) == DEFAULT
