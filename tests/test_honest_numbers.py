"""Figures a validator can trust: folds that never stop on what they score, a hold-out nothing
is fitted on, calibrated probabilities, and calibration measured the usual ways."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.errors import InputError
from credit_scoring.modelling.calibration import (
    Calibration,
    calibration_report,
    calibration_table,
    log_odds,
)
from credit_scoring.modelling.cross_validation import cross_validate, plan_folds, pooled_rounds
from credit_scoring.modelling.holdout import holdout_mask, holdout_report
from credit_scoring.modelling.threshold import choose_threshold
from tests.support.cpu import another_cpu
from tests.support.stages import run_stage, write_params


def run(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout


def labels(n: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype("int64")


def test_early_stopping_never_sees_the_scored_fold():
    y = labels(2000, 0.08, 0)
    plans = plan_folds(y, n_folds=5, stop_share=0.1, seed=42)
    held = np.concatenate([p.held for p in plans])
    assert np.array_equal(np.sort(held), np.arange(y.size))  # every applicant scored once
    for plan in plans:
        assert not set(plan.stop) & set(plan.held)  # stopped on rows it does not score
        assert not set(plan.fit) & set(plan.held)
        assert not set(plan.fit) & set(plan.stop)
        assert len(plan.fit) + len(plan.stop) + len(plan.held) == y.size
        assert abs(y[plan.stop].mean() - y.mean()) < 0.03  # stratified


def test_every_fold_and_the_final_fit_share_one_number_of_rounds():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 5))
    y = (rng.random(1500) < special.expit(x[:, 0] - 2.5)).astype("int64")
    cv = cross_validate(
        x,
        y,
        features=[f"f{i}" for i in range(5)],
        categorical=[],
        params={"learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20},
        n_folds=3,
        stop_share=0.2,
        seed=3,
        cores=1,
        max_rounds=300,
        early_stopping_rounds=20,
    )
    assert cv.rounds == pooled_rounds([f.curve["auc"] for f in cv.folds])
    assert cv.folds_report()["rounds"] == cv.rounds
    assert np.isfinite(cv.oof).all() and set(cv.fold_of) == {0, 1, 2}


def test_the_rounds_are_the_peak_of_the_folds_mean_curve():
    # one fold peaks at round 1 by chance and stops; the others still rise until round 3
    curves = [[0.70, 0.69], [0.60, 0.65, 0.70, 0.69], [0.61, 0.66, 0.71, 0.70]]
    # means: 0.6367, 0.6667, 0.7033 (0.69 carried on), 0.6933
    assert pooled_rounds(curves) == 3
    assert pooled_rounds([[0.5, 0.6, 0.6]]) == 2  # the first of equal peaks


def test_the_holdout_is_stratified_seeded_and_its_share():
    y = labels(5000, 0.08, 2)
    mask = holdout_mask(y, 0.2, seed=7)
    assert mask.sum() == 1000
    assert y[mask].mean() == pytest.approx(y.mean(), abs=0.002)
    assert np.array_equal(mask, holdout_mask(y, 0.2, seed=7))
    assert not np.array_equal(mask, holdout_mask(y, 0.2, seed=8))
    assert not holdout_mask(y, 0.0, seed=7).any()


def test_platt_scaling_recovers_a_known_miscalibration():
    rng = np.random.default_rng(4)
    raw_log_odds = rng.normal(-2.5, 1.0, 50_000)
    y = (rng.random(raw_log_odds.size) < special.expit(1.4 * raw_log_odds + 0.3)).astype(int)
    calibration = Calibration.fit(y, special.expit(raw_log_odds))
    assert calibration.slope == pytest.approx(1.4, abs=0.05)
    assert calibration.intercept == pytest.approx(0.3, abs=0.1)
    assert Calibration.from_json(json.dumps(calibration.to_dict())) == calibration


FIT_AND_PRINT = """
import numpy as np
from scipy import special
from credit_scoring.modelling.calibration import Calibration
rng = np.random.default_rng(4)
raw_log_odds = rng.normal(-2.5, 1.0, 50_000)
y = (rng.random(raw_log_odds.size) < special.expit(1.4 * raw_log_odds + 0.3)).astype(int)
fit = Calibration.fit(y, special.expit(raw_log_odds))
print(fit.slope.hex(), fit.intercept.hex())
"""


def test_platt_scaling_is_the_same_bits_on_another_cpu():
    """The calibration once came out a few bits apart on two CPUs (BLAS dot products), and a
    fresh clone's ``dvc repro`` did not reproduce the lock; its sums are exact now."""
    fits = {
        run([sys.executable, "-c", FIT_AND_PRINT], env={**os.environ, **env})
        for env in ({}, another_cpu())
    }
    assert len(fits) == 1, fits


@pytest.mark.parametrize(
    ("y", "p"),
    [
        (np.zeros(100), np.linspace(0.01, 0.5, 100)),  # one label only
        (np.arange(100) % 2, np.full(100, 0.3)),  # a flat model
        (np.arange(100) >= 50, np.linspace(0.01, 0.99, 100)),  # scores that separate
    ],
)
def test_scores_that_cannot_be_calibrated_are_named(y, p):
    with pytest.raises(InputError, match="calibration"):
        Calibration.fit(y, p)


def test_calibration_is_monotone_and_affine_in_the_log_odds():
    calibration = Calibration(slope=1.2, intercept=0.5)
    raw = np.linspace(0.001, 0.999, 500)
    calibrated = calibration.probability(raw)
    assert np.all(np.diff(calibrated) > 0)  # ranking (AUC) unchanged
    np.testing.assert_allclose(log_odds(calibrated), 1.2 * log_odds(raw) + 0.5, atol=1e-9)


def test_calibration_report_by_hand():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.3, 0.3, 0.6, 0.6, 0.9, 0.9])
    report = calibration_report(y, p, bins=4)
    assert report["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # bins of two: observed 0, 0.5, 0.5, 1 against predicted 0.1, 0.3, 0.6, 0.9
    assert report["ece"] == pytest.approx((0.1 + 0.2 + 0.1 + 0.1) / 4)
    expected, observed, n = np.array([0.2, 0.6, 1.2, 1.8]), np.array([0, 1, 1, 2]), 2
    hl = np.sum((observed - expected) ** 2 / (expected * (1 - expected / n)))
    assert report["hosmer_lemeshow_p"] == pytest.approx(stats.chi2.sf(hl, df=2))
    assert (report["mean_pd"], report["default_rate"]) == (pytest.approx(0.475), 0.5)


def test_the_calibration_plot_has_both_curves_on_the_same_bins():
    rng = np.random.default_rng(5)
    raw = rng.random(1000)
    y = (rng.random(1000) < raw).astype(int)
    rows = calibration_table(y, raw, Calibration(1.1, 0.2).probability(raw), bins=10)
    assert len(rows) == 10
    assert all(r["observed"] == r["diagonal"] for r in rows)
    assert [r["uncalibrated"] for r in rows] == sorted(r["uncalibrated"] for r in rows)
    assert all(r["calibrated"] > r["uncalibrated"] for r in rows[2:])  # intercept raises them


def test_the_holdout_report_uses_the_threshold_chosen_out_of_fold():
    rng = np.random.default_rng(6)
    oof_p, held_p = rng.random(3000) * 0.4, rng.random(1000) * 0.4
    oof_y = (rng.random(3000) < oof_p).astype(int)
    held_y = (rng.random(1000) < held_p).astype(int)
    decision = choose_threshold(oof_y, oof_p, cost_fn=10, cost_fp=1, grades=10)
    report = holdout_report(
        held_y, held_p, held_p, decision=decision, oof=(oof_y, oof_p), ratios=[5, 10, 20]
    )
    refused = held_p >= decision.threshold
    fn, fp = int(np.sum(~refused & (held_y == 1))), int(np.sum(refused & (held_y == 0)))
    assert report["threshold"] == decision.threshold
    assert report["cost_per_applicant"] == pytest.approx((10 * fn + fp) / 1000)
    assert report["policies"]["approve_all"]["cost_per_applicant"] == pytest.approx(
        10 * held_y.mean()
    )
    by_ratio = {row["fn_to_fp"]: row for row in report["sensitivity"]}
    assert by_ratio[10]["threshold"] == decision.threshold
    # dearer misses refuse more
    assert (
        by_ratio[5]["refused_share"]
        <= by_ratio[10]["refused_share"]
        <= by_ratio[20]["refused_share"]
    )


def test_no_stage_reads_the_holdout_labels_before_the_final_report(tmp_path):
    """The train stage runs with hold-out features that have no label column at all; only the
    threshold stage, the final report, needs them."""
    write_params(tmp_path, ["data.n_train=2000", "data.n_test=300", "model=fast"])
    for stage in ("download", "aggregate", "features"):
        run_stage(stage, tmp_path)
    holdout = tmp_path / "data/features/holdout.parquet"
    labelled = pd.read_parquet(holdout)
    labelled.drop(columns=TARGET).to_parquet(holdout)
    run_stage("train", tmp_path)
    scored = pd.read_parquet(tmp_path / "data/predictions/holdout.parquet")
    oof = pd.read_parquet(tmp_path / "data/predictions/oof.parquet")
    assert set(scored[KEY]) == set(labelled[KEY]) and TARGET not in scored
    assert not set(oof[KEY]) & set(labelled[KEY])  # no fold is cut from the hold-out
    assert len(labelled) == 400 and labelled[TARGET].mean() == pytest.approx(
        pd.concat([oof[TARGET], labelled[TARGET]]).mean(), abs=0.01
    )
    with pytest.raises(InputError, match=r"holdout\.parquet: missing column"):  # needs them
        run_stage("threshold", tmp_path)
    labelled.to_parquet(holdout)
    run_stage("threshold", tmp_path)
    report = json.loads((tmp_path / "reports/holdout.json").read_text())
    assert report["applicants"] == len(labelled)
