"""The validate stage on a real (small) pipeline run, and the model behaviours it vouches for:
monotone constraints that hold, age that never counts against applicants aged 62 or over, an
offline report, and a stage that fails only where its configuration says so."""

from __future__ import annotations

import json
import re
import shutil

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration, predict_contributions, predict_pd
from credit_scoring.validation.fairness import DAYS_PER_YEAR
from credit_scoring.validation.report import TITLES
from tests.support.stages import run_stage


@pytest.fixture(scope="module")
def model(packaged) -> dict:
    """The packaged run's served model, calibration, schema and feature tables."""
    work, params = packaged["work"], packaged["params"]
    return {
        "booster": lgb.Booster(model_file=str(work / params["train"]["model"])),
        "calibration": Calibration.from_json((work / params["train"]["calibration"]).read_text()),
        "schema": FeatureSchema.from_json((work / params["features"]["schema"]).read_text()),
        "holdout": pd.read_parquet(work / params["features"]["holdout"]),
        "test": pd.read_parquet(work / params["features"]["test"]),
        "monotone": params["model"]["monotone"],
    }


def test_the_report_is_offline_and_has_every_section(packaged):
    work, cfg = packaged["work"], packaged["params"]["validate"]
    page = (work / cfg["html"]).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, flags=re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    report = json.loads((work / cfg["json"]).read_text())
    for key, title in TITLES.items():
        assert key in report
        assert title in page
    metrics = json.loads((work / cfg["live_dir"] / "metrics.json").read_text())
    held = report["discrimination"]["holdout"]
    assert metrics["gini"] == pytest.approx(2 * held["auc"] - 1)
    assert held["gini_low"] <= held["gini"] <= held["gini_high"]
    assert metrics["score_psi"] == report["stability"]["score_psi"] >= 0
    assert len(report["stability"]["characteristics"]) == cfg["top_features"]
    # The fairness table covers both prohibited bases and the age bands, every group counted.
    table = pd.DataFrame(report["fairness"]["table"])
    assert set(table.attribute) == {"CODE_GENDER", "NAME_FAMILY_STATUS", "AGE_BAND"}
    for _, rows in table.groupby("attribute"):
        assert rows.applicants.sum() == report["summary"]["data_sets"]["holdout"]
    assert report["exclusions"]["excluded"] == ["CODE_GENDER", "NAME_FAMILY_STATUS"]
    # The risk grades are the service's: one row per grade of threshold.json.
    grades = json.loads((work / packaged["params"]["cost"]["out"]).read_text())["risk_bands"]
    assert [row["band"] for row in report["bands"]["table"]] == grades["labels"]


def test_constrained_features_move_the_probability_one_way_only(model):
    """Each constrained feature, moved its "good" way over its whole range for 200 applicants,
    never raises the probability (LightGBM's monotone_constraints, end to end)."""
    features = list(model["schema"].features)
    rows = model["holdout"][features].to_numpy()[:200]
    assert model["monotone"]  # the default configuration constrains features
    for name, direction in model["monotone"].items():
        j = features.index(name)
        seen = model["holdout"][name].dropna()
        # The good way: from the riskiest value to the safest, over the values seen.
        grid = np.unique(np.quantile(seen, np.linspace(0, 1, 25)))[::-direction]
        moved = np.repeat(rows, grid.size, axis=0)
        moved[:, j] = np.tile(grid, len(rows))
        p = predict_pd(model["booster"], model["calibration"], moved).reshape(len(rows), -1)
        assert (np.diff(p, axis=1) <= 1e-12).all(), name


def test_age_never_pushes_applicants_aged_62_or_over_toward_refusal(model, packaged):
    features = list(model["schema"].features)
    age_features = packaged["params"]["validate"]["age_features"]
    columns = [features.index(name) for name in age_features]
    checked = 0
    for frame in (model["holdout"], model["test"]):
        elderly = frame[-frame["DAYS_BIRTH"] / DAYS_PER_YEAR >= 62]
        contributions = predict_contributions(
            model["booster"], model["calibration"], elderly[features].to_numpy()
        )
        assert (contributions[:, columns].sum(axis=1) <= 0).all()
        checked += len(elderly)
    assert checked > 50
    report = json.loads((packaged["work"] / packaged["params"]["validate"]["json"]).read_text())
    assert report["age"]["passes"] and report["age"]["applicants"] > 0


def test_the_stage_fails_only_on_the_sections_configuration_names(packaged, tmp_path):
    """Pretending an external score derives from age makes the age rule fail (older applicants
    with a poor score are pushed toward refusal by it): a failure only when ``fail_on`` says."""
    work = tmp_path / "work"
    shutil.copytree(packaged["work"], work, ignore=shutil.ignore_patterns("bentoml"))
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["validate"]["age_features"] = ["EXT_SOURCE_MEAN"]
    for fail_on, code in (([], 0), (["age"], 1)):
        params["validate"]["fail_on"] = fail_on
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        done = run_stage("validate", work, in_process=False)
        assert done.returncode == code, done.stderr[-2000:]
    assert "validation failed on ['age'] (validate.fail_on)" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads((work / params["validate"]["json"]).read_text())
    assert not report["age"]["passes"]
