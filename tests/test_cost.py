"""The cost of a threshold: hand-checked values, an exact search against brute force, risk bands,
and the threshold stage: in process for what it writes, as DVC runs it for how it fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from credit_scoring.contract.tables import KEY, SchemaError
from credit_scoring.modelling.decision import APPROVE_ALL, RiskBands
from credit_scoring.modelling.threshold import (
    best_threshold,
    cost_curve,
    decision_cost,
    derive_bands,
    oof_scores,
    policy_costs,
    thin_curve,
)
from tests.support.stages import run_stage


def scored(n: int, seed: int, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Applicants whose default really depends on the score, so the optimum is not trivial."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 8, n)
    if decimals is not None:
        p = p.round(decimals)
    return (rng.random(n) < p).astype("int64"), p


def brute_force(y: np.ndarray, p: np.ndarray, cost_fn: float, cost_fp: float):
    """Every candidate evaluated on its own; ``<=`` keeps the highest of equal-cost thresholds."""
    best = None
    for threshold in [*np.unique(p), APPROVE_ALL]:
        report = decision_cost(y, p, threshold, cost_fn, cost_fp)
        if best is None or report.cost <= best.cost:
            best = report
    return best


@pytest.mark.parametrize(
    ("p", "expected"),
    [([0.9] * 4, (0, 2, 0, 2, 2.0)), ([0.1] * 4, (2, 0, 2, 0, 20.0))],
)
def test_hand_checked_cost(p, expected):
    report = decision_cost([0, 0, 1, 1], p, 0.5, cost_fn=10, cost_fp=1)
    assert (report.tn, report.fp, report.fn, report.tp, report.cost) == expected
    assert report.cost_per_applicant == expected[-1] / 4


def test_policies_hand_checked():
    policies = policy_costs([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], cost_fn=10, cost_fp=1)
    assert {name: r.cost for name, r in policies.items()} == {
        "approve_all": 20.0,  # both defaulters approved
        "refuse_all": 2.0,  # both good payers refused
        "threshold_0_5": 11.0,  # 0.6 (good) refused, 0.4 (defaulter) approved
    }
    assert policies["approve_all"].tn + policies["approve_all"].fn == 4
    assert policies["refuse_all"].threshold == 0.0


@pytest.mark.parametrize("decimals", [None, 2, 1])
@pytest.mark.parametrize(("cost_fn", "cost_fp"), [(10, 1), (1, 1), (1, 10), (2.5, 0.7)])
@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_matches_brute_force(seed, cost_fn, cost_fp, decimals):
    y, p = scored(400, seed, decimals)
    assert best_threshold(y, p, cost_fn, cost_fp) == brute_force(y, p, cost_fn, cost_fp)


@pytest.mark.parametrize(
    ("y", "p", "threshold", "cost"),
    [
        ([0, 0, 0], [0.2, 0.5, 0.9], APPROVE_ALL, 0.0),  # no defaulter: refuse no one
        ([1, 1, 1], [0.2, 0.5, 0.9], 0.2, 0.0),  # all defaulters: refuse all, highest such t
        ([1], [0.3], 0.3, 0.0),
        ([0], [0.3], APPROVE_ALL, 0.0),
        ([1, 1], [1.0, 1.0], 1.0, 0.0),  # a probability of 1 is still refusable
        ([1, 0], [0.2, 0.8], APPROVE_ALL, 1.0),  # 0.2 and "no one" tie at 1: the highest wins
    ],
)
def test_best_threshold_edge_cases(y, p, threshold, cost):
    best = best_threshold(y, p, cost_fn=1, cost_fp=1)
    assert (best.threshold, best.cost) == (threshold, cost)


def test_ties_share_a_decision():
    y, p = np.array([0, 1, 1, 0, 0]), np.array([0.4, 0.4, 0.4, 0.1, 0.1])
    best = best_threshold(y, p, cost_fn=10, cost_fp=1)
    assert (best.threshold, best.tp, best.fp) == (0.4, 2, 1)  # the three at 0.4 go together


def test_cost_curve_is_exact_and_thinning_keeps_the_optimum():
    y, p = scored(50_000, seed=3)
    curve = cost_curve(y, p, cost_fn=10, cost_fp=1)
    assert len(curve) == len(np.unique(p)) + 1
    assert curve.threshold.is_monotonic_increasing
    for i in (0, 17, len(curve) // 2, len(curve) - 1):
        row = curve.iloc[i]
        assert decision_cost(y, p, row.threshold, 10, 1).cost == row.cost
    assert (curve[["tn", "fp", "fn", "tp"]].sum(axis=1) == len(y)).all()

    thin = thin_curve(curve, max_points=300)
    best = best_threshold(y, p, cost_fn=10, cost_fp=1)
    assert len(thin) <= 300
    assert best.threshold in set(thin.threshold)
    assert thin.iloc[[0, -1]].threshold.tolist() == curve.iloc[[0, -1]].threshold.tolist()
    assert thin.merge(curve, on=list(curve.columns)).shape == thin.shape  # rows, not estimates
    assert len(thin_curve(curve.head(5), max_points=300)) == 5


@pytest.mark.parametrize("threshold", [0.0, 0.01, 0.0909, 0.3, 0.5, 0.8, 1.0, APPROVE_ALL])
def test_risk_grades_rise_and_keep_the_threshold_as_an_edge(threshold):
    y, p = scored(20_000, seed=4)
    bands = derive_bands(y, p, threshold, grades=10)
    grid = np.unique(np.concatenate([np.linspace(0, 1, 2001), np.clip(bands.edges, 0, 1)]))
    labels = bands.bands(grid)
    rank = np.array([bands.labels.index(label) for label in labels])
    assert (np.diff(rank) >= 0).all()  # monotone in p
    refused = grid >= threshold
    assert not set(labels[refused]) & set(labels[~refused])  # the threshold is an edge
    rates = pd.Series(y).groupby(bands.bands(p)).mean()
    for side in (p < threshold, p >= threshold):  # pooled on each side of the threshold
        assert rates[np.unique(bands.bands(p[side]))].is_monotonic_increasing
    assert [bands.band(x) for x in grid[::97]] == labels[::97].tolist()
    assert RiskBands.from_dict(json.loads(json.dumps(bands.to_dict()))) == bands


def test_risk_grades_pool_an_inversion_by_hand():
    # Four equal-count bins of 10 applicants with 1, 3, 2 and 6 defaults: bins 2 and 3 invert
    # (30% then 20%), so they pool into one grade of 5/20 = 25%; 10% < 25% < 60% rises.
    p = np.repeat([0.1, 0.2, 0.3, 0.6], 10)
    y = np.zeros(40, dtype=int)
    for start, defaults in zip((0, 10, 20, 30), (1, 3, 2, 6), strict=True):
        y[start : start + defaults] = 1
    bands = derive_bands(y, p, threshold=0.6, grades=4)
    assert bands.edges == (0.2, 0.6)
    assert bands.labels == ("A", "B", "C")
    assert bands.bands(p).tolist() == ["A"] * 10 + ["B"] * 20 + ["C"] * 10


def oof_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    y, p = scored(n, seed, decimals=3)
    return pd.DataFrame(
        {
            "SK_ID_CURR": np.arange(100_000, 100_000 + n, dtype="int64"),
            "TARGET": y,
            "fold": np.arange(n, dtype="int64") % 5,
            "probability": p,
        }
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda f: f.head(0), "oof: the table is empty"),
        (lambda f: f.drop(columns="probability"), "oof.probability: missing column"),
        (
            lambda f: f.assign(TARGET=f.TARGET.where(f.index != 4, 2)),
            "oof.TARGET: values must be 0",
        ),
        (lambda f: f.assign(TARGET=f.TARGET.astype(str)), "oof.TARGET: expected 0 or 1"),
        (lambda f: f.assign(probability=f.probability.where(f.index != 7)), "must be finite"),
        (lambda f: f.assign(probability=f.probability.where(f.index != 7, np.inf)), "finite"),
        (lambda f: f.assign(probability=f.probability + 1), "oof.probability: values must be in"),
        (lambda f: f.assign(probability=-f.probability - 1e-9), "oof.probability: values must be"),
    ],
)
def test_bad_oof_is_named(breakage, expected):
    with pytest.raises(SchemaError, match=expected.replace(".", r"\.")):
        oof_scores(breakage(oof_frame(50)))


NO_ANALYTICS = {"DVC_NO_ANALYTICS": "1"}


def stage_folder(workdir: Path, oof: pd.DataFrame | None) -> Path:
    """The threshold stage's params and inputs: the OOF scores (None: missing), and the
    hold-out's scores and labels."""
    params = {
        "train": {
            "oof": "data/predictions/oof.parquet",
            "holdout": "data/predictions/holdout.parquet",
            "final_fit": "development",
            "refit": "reports/refit.json",
            "refit_limits": {"rank_correlation_loss": 0.05, "psi": 0.1, "flip_share": 0.1},
        },
        "features": {"holdout": "data/features/holdout.parquet"},
        "validate": {"psi_bins": 10},
        "cost": {
            "fn": 10,
            "fp": 1,
            "sensitivity": [5, 10, 20],
            "curve_points": 50,
            "calibration_bins": 10,
            "grades": 10,
            "refer_odds": 1.2,
            "out": "models/threshold.json",
            "holdout": "reports/holdout.json",
            "live_dir": "dvclive/threshold",
        },
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    (workdir / "data/predictions").mkdir(parents=True)
    (workdir / "data/features").mkdir(parents=True)
    held = oof_frame(500, seed=1)
    held[[KEY, "probability"]].assign(uncalibrated=held.probability).to_parquet(
        workdir / "data/predictions/holdout.parquet", index=False
    )
    held[[KEY, "TARGET"]].to_parquet(workdir / "data/features/holdout.parquet", index=False)
    if oof is not None:
        oof.to_parquet(workdir / "data/predictions/oof.parquet", index=False)
    return workdir


def test_stage_writes_the_threshold_and_dvclive_files(tmp_path):
    oof = oof_frame()
    run_stage("threshold", stage_folder(tmp_path, oof), env=NO_ANALYTICS)

    out = json.loads((tmp_path / "models/threshold.json").read_text())
    y, p = oof.TARGET.to_numpy(), oof.probability.to_numpy()
    best = best_threshold(y, p, cost_fn=10, cost_fp=1)
    assert {k: out[k] for k in best.to_dict()} == best.to_dict()
    assert out["costs"] == {"fn": 10, "fp": 1}
    assert (out["applicants"], out["default_rate"]) == (len(oof), pytest.approx(y.mean()))
    assert out["policies"] == {k: r.to_dict() for k, r in policy_costs(y, p, 10, 1).items()}
    assert out["risk_bands"] == derive_bands(y, p, best.threshold, grades=10).to_dict()
    assert out["cost"] < min(r["cost"] for r in out["policies"].values())
    refit = json.loads((tmp_path / "reports/refit.json").read_text())
    assert refit == {"final_fit": "development", "check": None}  # the served model is validated

    held = pd.read_parquet(tmp_path / "data/predictions/holdout.parquet").merge(
        pd.read_parquet(tmp_path / "data/features/holdout.parquet"), on=KEY
    )
    report = json.loads((tmp_path / "reports/holdout.json").read_text())
    on_holdout = decision_cost(held.TARGET, held.probability, best.threshold, 10, 1)
    live = tmp_path / "dvclive/threshold"
    metrics = json.loads((live / "metrics.json").read_text())
    assert set(metrics) == {  # the headline only: the rest is in threshold.json and the report
        "cost_per_applicant",
        "threshold",
        "holdout_auc",
        "oof_cost_per_applicant",
        "brier",
    }
    assert metrics["threshold"] == best.threshold
    assert metrics["oof_cost_per_applicant"] == best.cost_per_applicant
    assert metrics["cost_per_applicant"] == report["cost_per_applicant"]
    assert report["applicants"] == len(held) and report["threshold"] == best.threshold
    assert report["cost_per_applicant"] == on_holdout.cost_per_applicant
    curve = json.loads((live / "plots/custom/cost_curve.json").read_text())
    assert 2 < len(curve) <= 50 and set(curve[0]) == {"threshold", "cost_per_applicant"}
    cells = pd.DataFrame(json.loads((live / "plots/sklearn/confusion_matrix.json").read_text()))
    assert cells.value_counts().to_dict() == {
        (actual, decision): count
        for actual, decision, count in [
            ("repaid", "approve", on_holdout.tn),
            ("repaid", "refuse", on_holdout.fp),
            ("default", "approve", on_holdout.fn),
            ("default", "refuse", on_holdout.tp),
        ]
        if count
    }
    assert not (live / "dvc.yaml").exists()


@pytest.mark.parametrize(
    ("oof", "expected"),
    [
        (
            oof_frame(50).assign(probability=1.5),
            "oof.parquet.probability: values must be in [0, 1]",
        ),
        (None, "data/predictions/oof.parquet not found"),
    ],
)
def test_stage_bad_input_exits_1_and_writes_nothing(tmp_path, oof, expected):
    folder = stage_folder(tmp_path, oof)
    done = run_stage("threshold", folder, in_process=False, env=NO_ANALYTICS, timeout=120)
    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "dvclive").exists()
