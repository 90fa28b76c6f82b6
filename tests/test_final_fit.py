"""train.final_fit: the served model refitted on every applicant, the refit check that bounds how
far it departs from the validated model, and the words that say which model the figures are of."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from credit_scoring.errors import ConfigError
from credit_scoring.modelling.cross_validation import FINAL_FIT_STATEMENTS, PROBABILITY, REFITTED
from tests.support.stages import run_stage


def copy_run(packaged: dict, folder: Path, **train: object) -> dict:
    """The packaged run's files (not its model store) in ``folder``, with ``train`` settings."""
    shutil.copytree(packaged["work"], folder, ignore=shutil.ignore_patterns("bentoml"))
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["train"].update(train)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture(scope="module")
def refitted(packaged, tmp_path_factory) -> dict:
    """The packaged run again from the train stage on, with the final fit on every applicant.

    Its 3,000 applicants and fast model move more with a fifth more data than the defaults
    allow (on the default data the refit keeps a rank correlation of 0.97), so the limits are
    wider here."""
    work = tmp_path_factory.mktemp("refitted") / "run"
    limits = {"rank_correlation_loss": 0.5, "psi": 0.5, "flip_share": 0.5}
    params = copy_run(packaged, work, final_fit="all", refit_limits=limits)
    for stage in ("train", "threshold", "validate", "package"):
        run_stage(stage, work)
    return {"work": work, "params": params}


def test_the_refit_is_another_model_and_the_validated_one_is_kept(packaged, refitted):
    before, after = packaged["work"], refitted["work"]
    train = refitted["params"]["train"]
    assert (after / train["model"]).read_text() != (before / train["model"]).read_text()
    held_before = pd.read_parquet(before / train["holdout"])
    held_after = pd.read_parquet(after / train["holdout"])
    # The hold-out figures stay the validated model's: the same scores as the development fit.
    pd.testing.assert_series_equal(held_after[PROBABILITY], held_before[PROBABILITY])
    assert REFITTED not in held_before
    assert not held_after[REFITTED].equals(held_after[PROBABILITY])
    assert (after / train["oof"]).read_bytes() == (before / train["oof"]).read_bytes()


def test_the_refit_check_is_written_and_said_in_words(refitted):
    work, train = refitted["work"], refitted["params"]["train"]
    report = json.loads((work / train["refit"]).read_text())
    check = report["check"]
    assert report["final_fit"] == "all"
    assert check["applicants"] == len(pd.read_parquet(work / train["holdout"]))
    assert 0.5 < check["rank_correlation"] <= 1
    assert check["rank_correlation_loss"] == pytest.approx(1 - check["rank_correlation"])
    assert 0 <= check["psi"] < 1 and 0 <= check["flip_share"] < 0.5
    assert check["limits"] == train["refit_limits"] and check["failed"] == []
    validation = json.loads((work / refitted["params"]["validate"]["json"]).read_text())
    assert validation["summary"]["fitting"] == FINAL_FIT_STATEMENTS["all"]
    assert (
        FINAL_FIT_STATEMENTS["all"] in (work / refitted["params"]["validate"]["html"]).read_text()
    )
    card = json.loads((work / "models" / "package" / "card.json").read_text())
    assert card["fitting"] == {
        "final_fit": "all",
        "statement": FINAL_FIT_STATEMENTS["all"],
        "refit_check": check,
    }


def test_the_development_fit_writes_that_there_was_no_refit(packaged):
    train = packaged["params"]["train"]
    report = json.loads((packaged["work"] / train["refit"]).read_text())
    assert report == {"final_fit": "development", "check": None}


def test_limits_of_zero_stop_the_threshold_stage_naming_the_check(refitted, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(refitted["work"], work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["refit_limits"] = {"rank_correlation_loss": 0, "psi": 0, "flip_share": 0}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = run_stage("threshold", work, in_process=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "refit check: rank_correlation_loss" in done.stderr
    assert "> train.refit_limits.rank_correlation_loss 0" in done.stderr
    written = json.loads((work / params["train"]["refit"]).read_text())["check"]
    assert len(written["failed"]) >= 2  # the rank and PSI at least; flips only if any


@pytest.mark.parametrize("stage", ["train", "threshold"])
def test_an_unknown_final_fit_is_refused(packaged, tmp_path, stage):
    work = tmp_path / "run"
    copy_run(packaged, work, final_fit="everyone")
    with pytest.raises(ConfigError, match=r"train.final_fit: 'everyone' is not one of"):
        run_stage(stage, work)
