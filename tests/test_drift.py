"""The drift report: Evidently run for real on synthetic applicants with and without a shift."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from credit_scoring.contract.tables import KEY, TARGET, load_contract
from credit_scoring.features.feature_schema import build_schema
from credit_scoring.features.transform import feature_frame
from credit_scoring.modelling.cross_validation import PROBABILITY, fit_final
from credit_scoring.modelling.threshold import ThresholdDecision
from credit_scoring.monitoring.drift import (
    Sample,
    choose_columns,
    empty_columns,
    score_histogram,
)
from credit_scoring.sources.synthetic import generate

SHIFTED = ["EXT_SOURCE_2", "DAYS_BIRTH", "NAME_INCOME_TYPE"]
# Engineered from the shifted columns, so they move with them: a true alarm, not a false one.
DERIVED = {f"EXT_SOURCE_{s}" for s in ("MEAN", "STD", "MIN", "MAX", "PROD")} | {
    "EMPLOYED_BIRTH_RATIO"
}
OTHERS_TOLERATED = 3  # false alarms allowed among the ~125 columns that did not move
SIZE = {"n_train": 3000, "n_test": 2000, "seed": 11}
DRIFT = {
    "html": "reports/drift.html",
    "json": "reports/drift.json",
    "live_dir": "dvclive/drift",
    "top_features": 15,
    "sample": 2500,  # less than n_train, so the reference is really sampled
    "seed": 42,
    "drift_share": 0.5,
    "score_bins": 20,
}
MONITORING = "reports/monitoring/batch"
# A <script>, <link> or <img> that fetches from the network: the report must open offline.
REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def run_stage(workdir: Path) -> subprocess.CompletedProcess:
    return run_module(workdir, "pipelines.drift")


def check_batch(workdir: Path, batch: str, out: str) -> subprocess.CompletedProcess:
    """The batch check a user runs after deployment."""
    return run_module(workdir, "credit_scoring.monitoring", "--current", batch, "--out", out)


def run_module(workdir: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A project folder as the upstream stages leave it, with a tiny model and a shifted test."""
    root = tmp_path_factory.mktemp("drift")
    tables = generate(**SIZE, drift_columns=SHIFTED, drift_shift=0.5)
    train, test = tables["application_train"], tables["application_test"]
    schema = build_schema(load_contract()["application_train"], [])
    frame = feature_frame(train, pd.DataFrame({KEY: pd.Series(dtype="int64")}), schema)
    booster = fit_final(
        frame[list(schema.features)].to_numpy(),
        frame[TARGET].to_numpy(),
        features=schema.features,
        categorical=schema.categorical_indices,
        params={"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20},
        seed=3,
        threads=2,
        rounds=60,
    )
    paths = {
        "data": {"raw_dir": "data/raw"},
        "aggregate": {"out": "data/interim/aggregates.parquet"},
        "features": {"schema": "data/features/feature_schema.json"},
        "train": {"model": "models/model.txt"},
        "cost": {"out": "models/threshold.json"},
        "drift": DRIFT,
    }
    for folder in ("data/raw", "data/interim", "data/features", "models"):
        (root / folder).mkdir(parents=True)
    train.to_parquet(root / "data/raw/application_train.parquet")
    test.to_parquet(root / "data/raw/application_test.parquet")
    pd.DataFrame({KEY: pd.Series(dtype="int64")}).to_parquet(root / paths["aggregate"]["out"])
    (root / paths["features"]["schema"]).write_text(json.dumps(schema.to_dict()))
    (root / paths["train"]["model"]).write_text(booster.model_to_string())
    y = np.r_[np.ones(200, dtype="int64"), np.zeros(2800, dtype="int64")]
    p = np.r_[np.full(150, 0.3), np.full(50, 0.01), np.full(600, 0.3), np.full(2200, 0.01)]
    decision = ThresholdDecision.choose(y, p, cost_fn=10, cost_fp=1)  # 0.3: 150 tp, 600 fp
    assert (decision.threshold, decision.chosen.tp, decision.chosen.fp) == (0.3, 150, 600)
    (root / paths["cost"]["out"]).write_text(json.dumps(decision.to_dict()))
    (root / "params.yaml").write_text(yaml.safe_dump(paths))
    unshifted = generate(**SIZE)["application_test"]
    unshifted.assign(TARGET=0).to_csv(root / "batch.csv", index=False)  # TARGET is dropped
    return root


@pytest.fixture(scope="module")
def shifted_report(workdir) -> dict:
    done = run_stage(workdir)
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / DRIFT["json"]).read_text())


@pytest.fixture(scope="module")
def unshifted_report(workdir) -> dict:
    done = check_batch(workdir, "batch.csv", MONITORING)
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / MONITORING / "drift.json").read_text())


def drifted(report: dict) -> set[str]:
    return {name for name, column in report["columns"].items() if column["drifted"]}


def test_shifted_columns_are_flagged_and_few_others(shifted_report):
    flagged = drifted(shifted_report)
    assert set(SHIFTED) <= flagged
    assert len(flagged - set(SHIFTED) - DERIVED) <= OTHERS_TOLERATED, flagged
    dataset = shifted_report["dataset"]
    assert dataset["drifted_columns"] == len(flagged)
    assert dataset["columns"] == len(shifted_report["columns"]) > 120
    assert dataset["share_drifted_columns"] == pytest.approx(len(flagged) / dataset["columns"])
    assert dataset["dataset_drift"] is False  # 3 of ~135 is far below drift_share 0.5
    column = shifted_report["columns"]["EXT_SOURCE_2"]
    assert column["method"] == "Wasserstein distance (normed)"
    assert column["score"] >= column["threshold"] == 0.1
    assert shifted_report["columns"]["NAME_INCOME_TYPE"]["method"] == "Jensen-Shannon distance"


def test_report_notes_sampling_and_prediction_shares(shifted_report, workdir):
    assert shifted_report["sample"] == {
        "seed": 42,
        "max_rows": 2500,
        "reference": {"rows": 3000, "sampled": 2500},
        "current": {"rows": 2000, "sampled": 2000},
    }
    prediction = shifted_report["prediction"]
    assert {"method", "score", "threshold", "drifted"} <= prediction.keys()
    assert prediction["decision_threshold"] == 0.3
    assert prediction["training_oof_share_refused"] == pytest.approx(750 / 3000)
    for key in ("reference_share_refused", "current_share_refused"):
        assert 0 < prediction[key] < 1
    assert PROBABILITY not in shifted_report["columns"]  # scores do not count as a column
    metrics = json.loads((workdir / DRIFT["live_dir"] / "metrics.json").read_text())
    assert metrics == {  # the headline only: the rest is in drift.json
        "share_drifted_columns": shifted_report["dataset"]["share_drifted_columns"],
        "score_drift": prediction["score"],
    }
    plot = workdir / DRIFT["live_dir"] / "plots/custom/score_distribution.json"
    assert len(json.loads(plot.read_text())) == DRIFT["score_bins"]


def test_html_is_self_contained(shifted_report, workdir):
    html = (workdir / DRIFT["html"]).read_text(encoding="utf-8")
    assert "<script>" in html  # Evidently inlines its bundle
    assert not REMOTE.search(html)
    assert "@import url(http" not in html


def test_an_unshifted_batch_does_not_drift(unshifted_report, workdir):
    assert unshifted_report["dataset"]["dataset_drift"] is False
    assert len(drifted(unshifted_report)) <= OTHERS_TOLERATED, drifted(unshifted_report)
    assert unshifted_report["sample"]["current"]["rows"] == SIZE["n_test"]
    out = workdir / MONITORING
    assert sorted(p.name for p in out.iterdir()) == ["drift.html", "drift.json"]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda f: f.drop(columns="AMT_CREDIT"), "application_test.AMT_CREDIT: missing column"),
        (
            lambda f: f.assign(DAYS_BIRTH=f.DAYS_BIRTH.astype(object).where(f.index != 4, "old")),
            "application_test.DAYS_BIRTH: expected int64, 1 bad value(s), first 'old' at row 4",
        ),
    ],
)
def test_a_broken_batch_is_refused_naming_the_column(workdir, breakage, expected):
    breakage(pd.read_csv(workdir / "batch.csv")).to_csv(workdir / "broken.csv", index=False)
    done = check_batch(workdir, "broken.csv", "reports/monitoring/broken")
    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert not (workdir / "reports/monitoring/broken").exists()


def test_columns_are_the_raw_ones_plus_the_top_other_features():
    table = load_contract()["application_test"]
    gain = {"AMT_CREDIT": 9.0, "EXT_SOURCE_MEAN": 5.0, "BURO_COUNT": 7.0, "UNUSED": 0.0}
    columns = choose_columns(table, gain, top_features=2)
    assert columns.engineered == ("BURO_COUNT", "EXT_SOURCE_MEAN")  # by gain, raw ones excluded
    assert "NAME_INCOME_TYPE" in columns.categorical and "DAYS_BIRTH" in columns.numerical
    assert KEY not in columns.names and len(columns.raw) == len(table.columns) - 1
    assert choose_columns(table, gain, top_features=5).engineered[-1] == "EXT_SOURCE_MEAN"


def test_sampling_is_seeded_and_keeps_small_populations_whole():
    big, small = pd.DataFrame({KEY: np.arange(100)}), pd.DataFrame({KEY: np.arange(5)})
    first, second = Sample.draw(big, small, 10, 1), Sample.draw(big, small, 10, 1)
    pd.testing.assert_frame_equal(first.reference, second.reference)
    assert len(first.reference) == 10 and len(first.current) == 5
    assert first.to_dict()["reference"] == {"rows": 100, "sampled": 10}


def test_score_histogram_gives_each_population_shares():
    rng = np.random.default_rng(0)
    rows = score_histogram(rng.beta(1, 9, 1000), rng.beta(2, 9, 300), bins=10)
    assert len(rows) == 10
    for population in ("reference", "current"):
        assert sum(r[population] for r in rows) == pytest.approx(1.0)


def test_a_column_without_values_is_left_out_not_fatal():
    columns = choose_columns(load_contract()["application_test"], {"BURO_COUNT": 1.0}, 1)
    frame = pd.DataFrame({name: [1.0, 2.0] for name in columns.names}).assign(EXT_SOURCE_1=np.nan)
    assert empty_columns(frame, columns.names) == ["EXT_SOURCE_1"]
    kept = columns.without(["EXT_SOURCE_1", "BURO_COUNT"])
    assert kept.names == tuple(c for c in columns.names if c not in ("EXT_SOURCE_1", "BURO_COUNT"))
