"""The tuning search: its own pipeline that never reads the hold-out, repeatable with its seed,
resumable, and a config the train stage accepts (``-S model=tuned``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from credit_scoring.config import compose_params
from credit_scoring.errors import ConfigError
from credit_scoring.tuning.search import SearchSpace
from tests.support.stages import run_stage

PIPELINE = yaml.safe_load((ROOT / "tuning" / "dvc.yaml").read_text())


def scratch(packaged: dict, folder: Path, trials: int) -> dict:
    """The packaged run's development features and schema, and no hold-out, in ``folder``."""
    work, params = packaged["work"], dict(packaged["params"])
    for key in ("train", "schema"):
        target = folder / params["features"][key]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / params["features"][key], target)
    params["tune"] = {**params["tune"], "trials": trials}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def tune(packaged: dict, folder: Path, trials: int) -> dict:
    """Run the tune stage in ``folder`` (made if need be); its report, config and params."""
    params = scratch(packaged, folder, trials)
    run_stage("tune", folder)
    return {
        "report": json.loads((folder / params["tune"]["json"]).read_text()),
        "config": (folder / params["tune"]["out"]).read_text(),
        "params": params,
    }


@pytest.fixture(scope="module")
def studies(packaged, tmp_path_factory) -> dict:
    """The same small study twice, in two folders, and a third stopped after two trials."""
    base = tmp_path_factory.mktemp("tuning")
    return {
        "first": tune(packaged, base / "first", trials=3),
        "again": tune(packaged, base / "again", trials=3),
        "stopped": tune(packaged, base / "resumed", trials=2),
        "resumed": tune(packaged, base / "resumed", trials=3),
        "folder": base,
    }


def test_the_tune_pipeline_never_reads_the_holdout(studies):
    stage = PIPELINE["stages"]["tune"]
    named = json.dumps([stage["deps"], stage["params"]])
    assert "holdout" not in named and "features.test" not in named
    assert "${features.train}" in stage["deps"]
    # The studies above ran in folders that hold no hold-out file at all.
    assert not list(studies["folder"].rglob("holdout*"))
    assert studies["first"]["report"]["trials"] == 3


def test_the_tune_pipeline_is_not_part_of_dvc_repro():
    root = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert "tune" not in root["stages"]
    assert PIPELINE["stages"]["tune"]["wdir"] == ".."


def test_a_study_repeats_with_its_seed(studies):
    first, again = studies["first"], studies["again"]
    assert first["report"] == again["report"]
    assert first["config"] == again["config"]
    history = first["report"]["history"]
    assert [row["trial"] for row in history] == [0, 1, 2]
    assert first["report"]["best"]["auc"] == max(row["auc"] for row in history)
    # Trial 0 is the model's own settings, the others searched within the space.
    own = first["params"]["model"]["lightgbm"]
    assert first["report"]["own"]["settings"] == {
        k: own[k] for k in first["params"]["tune"]["space"]
    }
    space = first["params"]["tune"]["space"]
    for row in history:
        for name, bounds in space.items():
            assert bounds["low"] <= row[name] <= bounds["high"]
    page = (studies["folder"] / "first" / first["params"]["tune"]["html"]).read_text()
    assert "<script" not in page and "Every trial" in page


def test_a_stopped_study_resumes_where_it_stopped(studies):
    stopped, resumed = studies["stopped"]["report"], studies["resumed"]["report"]
    assert stopped["study"] == resumed["study"] == studies["first"]["report"]["study"]
    assert resumed["trials"] == 3
    assert resumed["history"][:2] == stopped["history"] == studies["first"]["report"]["history"][:2]
    names = list(studies["first"]["params"]["tune"]["space"])
    settings = [tuple(row[n] for n in names) for row in resumed["history"]]
    assert len(set(settings)) == 3  # the resumed sampler never repeats a trial it ran


def test_the_tuned_config_trains(studies, packaged, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "model" / "tuned.yaml").write_text(studies["first"]["config"])
    params = yaml.safe_load(compose_params(conf, ["model=tuned"]))
    best = studies["first"]["report"]["best"]["settings"]
    assert params["model"]["name"] == "tuned"
    assert {k: params["model"]["lightgbm"][k] for k in best} == best
    default = yaml.safe_load(compose_params(conf, []))["model"]
    assert params["model"]["monotone"] == default["monotone"]  # only the searched keys differ
    work = tmp_path / "run"
    shutil.copytree(packaged["work"] / "data" / "features", work / "data" / "features")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_stage("train", work)
    model = (work / params["train"]["model"]).read_text()
    rate = re.search(r"^\[learning_rate: (.+)\]$", model, re.M)[1]
    assert float(rate) == pytest.approx(best["learning_rate"], rel=1e-5)  # LightGBM prints 6 digits


@pytest.mark.parametrize(
    "space, message",
    [
        ({}, "no parameter to search"),
        ({"bogus": {"low": 1, "high": 2}}, "tune.space.bogus: not a parameter of model.lightgbm"),
        ({"num_leaves": {"low": 64, "high": 8}}, "expected low < high"),
        ({"learning_rate": {"low": 0, "high": 0.1, "log": True}}, "above 0 with log"),
        ({"learning_rate": {"low": "a", "high": 0.1}}, "expected low < high"),
    ],
)
def test_a_bad_search_space_is_named(space, message):
    lightgbm = yaml.safe_load((ROOT / "conf" / "model" / "default.yaml").read_text())["lightgbm"]
    with pytest.raises(ConfigError, match=re.escape(message)):
        SearchSpace.from_params(space, lightgbm)
