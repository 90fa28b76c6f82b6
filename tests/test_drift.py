"""The drift report: Evidently run for real on synthetic applicants with and without a shift."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.tables import KEY, load_contract
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.monitoring.drift import (
    Sample,
    choose_columns,
    empty_columns,
    score_histogram,
)
from credit_scoring.serving.records import RecordLog, final_record
from credit_scoring.sources.synthetic import generate
from tests.support.stages import run_module, run_stage, write_params

# The drift stage runs in this process: Evidently's imports warn of their own dependencies.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:evidently"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litestar"),
]

SHIFTED = ["EXT_SOURCE_2", "DAYS_BIRTH", "NAME_INCOME_TYPE"]
# Engineered from the shifted columns, or tied to them by the generator (employment starts after
# the 18th birthday; pensioners have no employer), so they move with them: true alarms.
DERIVED = {f"EXT_SOURCE_{s}" for s in ("MEAN", "STD", "MIN", "MAX", "PROD")} | {
    "DAYS_EMPLOYED",
    "DAYS_EMPLOYED_ANOM",
    "ORGANIZATION_TYPE",
}
OTHERS_TOLERATED = 3  # false alarms allowed among the ~125 columns that did not move, counting
# a building measure once: its _AVG, _MODE and _MEDI columns are three views of one value
SIZE = {"n_train": 10000, "n_test": 2000, "seed": 11}
# A hold-out (the reference) of 4,000, sampled to 3,500: enough known values in the sparse
# building columns for Evidently to measure distances, not p-values that small samples upset.
HOLDOUT_SHARE = 0.4
DRIFT = {"sample": 3500, "top_features": 15, "score_bins": 20}
MONITORING = "reports/monitoring/batch"
# A <script>, <link> or <img> that fetches from the network: the report must open offline.
REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def check_batch(workdir: Path, batch: str, out: str, *more: str) -> subprocess.CompletedProcess:
    """The batch check a user runs after deployment, as they run it: a command, not a stage."""
    args = ("--current", batch, "--out", out, *more)
    return run_module("credit_scoring.monitoring", workdir, *args, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A project after `dvc repro` on synthetic data whose test population is shifted."""
    root = tmp_path_factory.mktemp("drift")
    shifted = ",".join(SHIFTED)
    overrides = [
        *(f"data.{k}={v}" for k, v in SIZE.items()),
        f"data.drift.columns=[{shifted}]",
        "data.drift.shift=0.5",
        "model=fast",
        f"features.holdout_share={HOLDOUT_SHARE}",
        *(f"drift.{k}={v}" for k, v in DRIFT.items()),
    ]
    params = write_params(root, overrides)
    for stage in ("download", "aggregate", "features", "train", "threshold", "package"):
        run_stage(stage, root)
    batch = generate(**SIZE)["application_test"]  # the same applicants, not shifted
    batch.assign(TARGET=0).to_csv(root / "batch.csv", index=False)  # TARGET is dropped
    assert params["drift"]["json"] == "reports/drift.json"
    return root


@pytest.fixture(scope="module")
def shifted_report(workdir) -> dict:
    run_stage("drift", workdir)
    return json.loads((workdir / "reports/drift.json").read_text())


@pytest.fixture(scope="module")
def unshifted_report(workdir) -> dict:
    done = check_batch(workdir, "batch.csv", MONITORING)
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / MONITORING / "drift.json").read_text())


def drifted(report: dict) -> set[str]:
    return {name for name, column in report["columns"].items() if column["drifted"]}


def measures(columns: set[str]) -> set[str]:
    """Columns with a building measure's three statistics counted once."""
    return {re.sub(r"_(AVG|MODE|MEDI)$", "", name) for name in columns}


def test_shifted_columns_are_flagged_and_few_others(shifted_report):
    flagged = drifted(shifted_report)
    assert set(SHIFTED) <= flagged
    assert len(measures(flagged - set(SHIFTED) - DERIVED)) <= OTHERS_TOLERATED, flagged
    dataset = shifted_report["dataset"]
    assert dataset["drifted_columns"] == len(flagged)
    assert dataset["columns"] == len(shifted_report["columns"]) > 120
    assert dataset["share_drifted_columns"] == pytest.approx(len(flagged) / dataset["columns"])
    assert dataset["dataset_drift"] is False  # 3 of ~135 is far below drift_share 0.5
    column = shifted_report["columns"]["EXT_SOURCE_2"]
    assert column["method"] == "Wasserstein distance (normed)"
    assert column["score"] >= column["threshold"] == 0.1
    assert shifted_report["columns"]["NAME_INCOME_TYPE"]["method"] == "Jensen-Shannon distance"


def test_the_reference_is_the_holdout_scored_out_of_sample(shifted_report, workdir):
    holdout = pd.read_parquet(workdir / "data/features/holdout.parquet", columns=[KEY])
    assert len(holdout) == SIZE["n_train"] * HOLDOUT_SHARE
    assert shifted_report["sample"] == {
        "seed": 42,
        "max_rows": DRIFT["sample"],
        "reference": {"rows": len(holdout), "sampled": DRIFT["sample"]},
        "current": {"rows": SIZE["n_test"], "sampled": SIZE["n_test"]},
    }
    # Out of sample on both sides: the scores of an unshifted population would not drift.
    assert shifted_report["left_out"]["without_history"] == 0


def test_report_notes_sampling_and_prediction_shares(shifted_report, workdir):
    decision = ThresholdDecision.from_json((workdir / "models/threshold.json").read_text())
    prediction = shifted_report["prediction"]
    assert {"method", "score", "threshold", "drifted"} <= prediction.keys()
    assert prediction["decision_threshold"] == decision.threshold
    assert prediction["training_oof_share_refused"] == decision.refused_share
    for key in ("reference_share_refused", "current_share_refused"):
        assert 0 < prediction[key] < 1
    assert PROBABILITY not in shifted_report["columns"]  # scores do not count as a column
    metrics = json.loads((workdir / "dvclive/drift/metrics.json").read_text())
    assert metrics == {  # the headline only: the rest is in drift.json
        "share_drifted_columns": shifted_report["dataset"]["share_drifted_columns"],
        "score_drift": prediction["score"],
    }
    plot = workdir / "dvclive/drift/plots/custom/score_distribution.json"
    assert len(json.loads(plot.read_text())) == DRIFT["score_bins"]


def test_html_is_self_contained(shifted_report, workdir):
    html = (workdir / "reports/drift.html").read_text(encoding="utf-8")
    assert "<script>" in html  # Evidently inlines its bundle
    assert not REMOTE.search(html)
    assert "@import url(http" not in html


def test_days_employed_is_compared_without_its_placeholder(shifted_report):
    assert "DAYS_EMPLOYED_ANOM" in shifted_report["columns"]
    assert "DAYS_EMPLOYED" in shifted_report["columns"]


def test_applicants_unknown_to_the_package_leave_the_history_out(workdir):
    batch = pd.read_csv(workdir / "batch.csv")
    batch.assign(**{KEY: batch[KEY] + 10_000_000}).to_csv(workdir / "new.csv", index=False)
    done = check_batch(workdir, "new.csv", "reports/monitoring/new")
    assert done.returncode == 0, done.stderr
    report = json.loads((workdir / "reports/monitoring/new/drift.json").read_text())
    assert report["left_out"]["without_history"] == SIZE["n_test"]
    assert not [c for c in report["columns"] if c.startswith(("BURO_", "PREV_", "INSTAL_"))]


def test_an_unshifted_batch_does_not_drift(unshifted_report, workdir):
    assert unshifted_report["dataset"]["dataset_drift"] is False
    assert len(measures(drifted(unshifted_report))) <= OTHERS_TOLERATED, drifted(unshifted_report)
    assert unshifted_report["sample"]["current"]["rows"] == SIZE["n_test"]
    assert unshifted_report["left_out"]["without_history"] == 0  # the package knows them
    out = workdir / MONITORING
    assert sorted(p.name for p in out.iterdir()) == ["drift.html", "drift.json", "stability.json"]
    stability = json.loads((out / "stability.json").read_text())
    assert stability["alarms"] == [] and stability["score_reading"] == "stable"
    assert (stability["reference"], stability["current"]) == ("holdout", "batch.csv")
    refusal = stability["refusal_rate"]
    assert refusal["change"] == pytest.approx(refusal["current"] - refusal["reference"])
    assert abs(refusal["change"]) <= 0.05 and not refusal["flagged"]
    assert 0 < len(stability["characteristics"]) <= 20


def test_the_report_shows_the_override_rate_by_grade_from_the_record(workdir):
    """Two recommendations in grade B, one overruled by an officer; a simulation never counts."""
    log = RecordLog(workdir / "decisions.sqlite3")
    base = {"item": 0, "model_version": "v", "probability": 0.1, "score": 560.0,
            "decision": "refuse", "recommendation": "refuse", "risk_band": "B",
            "time": "2026-11-29T00:00:00+00:00"}  # fmt: skip
    made = [{**base, "kind": kind, "request_id": f"{i:032x}"}
            for i, kind in enumerate(["decision", "decision", "simulation"])]  # fmt: skip
    final = final_record(made[0], request_id="f" * 32, officer_id="o", decision="approve",
                         reason="OTHER", reason_text="t", note="", time=base["time"])  # fmt: skip
    log.submit([*made, final]).result(timeout=30)
    log.close()
    out = "reports/monitoring/oversight"
    done = check_batch(workdir, "batch.csv", out, "--records", "decisions.sqlite3")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((workdir / out / "oversight.json").read_text()) == [
        {"risk_band": "B", "recommendations": 2, "warned": 0, "final_decisions": 1,
         "overrides": 1, "override_rate": 1.0}
    ]  # fmt: skip
    line = "grade B: 2 recommendations, 0 with warnings, 1 final decisions, 1 overridden (100.0%)"
    assert line in done.stderr


def test_a_shifted_batch_exits_with_an_alarm_a_scheduler_can_act_on(workdir):
    """External scores at a third of their value: riskier applicants, a shifted score, more
    refusals. The command still writes its reports, names both alarms and exits 3."""
    batch = pd.read_csv(workdir / "batch.csv")
    lowered = {name: batch[name] / 3 for name in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")}
    batch.assign(**lowered).to_csv(workdir / "riskier.csv", index=False)
    done = check_batch(workdir, "riskier.csv", "reports/monitoring/riskier")
    assert done.returncode == 3, done.stderr[-2000:]
    stability = json.loads((workdir / "reports/monitoring/riskier/stability.json").read_text())
    assert stability["score_psi"] >= 0.25 and stability["score_reading"] == "shifted"
    assert stability["refusal_rate"]["change"] > 0.05 and stability["refusal_rate"]["flagged"]
    assert "ALARM: the score has shifted: PSI" in done.stderr
    assert "ALARM: the refusal rate moved +" in done.stderr
    assert "score PSI" in done.stderr  # the section itself is printed
    assert "Traceback" not in done.stderr


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
    # the placeholder's flag first, then by gain, raw ones excluded
    assert columns.engineered == ("DAYS_EMPLOYED_ANOM", "BURO_COUNT", "EXT_SOURCE_MEAN")
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
