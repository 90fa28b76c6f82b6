"""End to end: a fresh clone reproduces the committed dvc.lock, and experiments compose conf/.

These run the real `dvc` on a `git clone` of this repository, so they see what is committed,
not the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),  # the clone's library, not the editable install's
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(cwd.parent / "bentoml"),  # the package stage's store, not ~/bentoml
    }
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path_factory.mktemp("clone") / "repo"
    run(["git", "clone", "--quiet", str(ROOT), str(target)], cwd=ROOT)
    run(["git", "config", "user.email", "ci@example.invalid"], cwd=target)
    run(["git", "config", "user.name", "ci"], cwd=target)
    yield target
    shutil.rmtree(target, ignore_errors=True)


def test_fresh_clone_reproduces_the_committed_lock(clone):
    committed = (clone / "dvc.lock").read_text()
    run(["dvc", "repro"], cwd=clone)
    assert (clone / "dvc.lock").read_text() == committed
    status = run(["dvc", "status", "--json"], cwd=clone)
    assert json.loads(status.stdout) == {}
    # Only the train stage's DVClive record may differ: it holds the wall time of the run.
    changed = run(["git", "status", "--porcelain"], cwd=clone).stdout.splitlines()
    assert all("dvclive/train/" in line for line in changed), changed


def test_push_and_pull_through_the_default_remote(clone):
    run(["dvc", "repro"], cwd=clone)
    run(["dvc", "push"], cwd=clone)
    assert any((clone / "dvc-storage").rglob("*"))
    shutil.rmtree(clone / "data")
    run(["dvc", "pull"], cwd=clone)
    assert json.loads(run(["dvc", "status", "--json"], cwd=clone).stdout) == {}


def experiments(clone: Path) -> dict[str, dict]:
    """The named experiments of `dvc exp show --json`, each as its data (params, metrics)."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], cwd=clone).stdout)
    return {
        exp["name"]: exp["revs"][0]["data"]
        for rev in shown
        for exp in rev.get("experiments") or []
        if exp.get("name")
    }


def test_experiment_switches_the_data_group(clone):
    run(
        [
            "dvc", "exp", "run", "--name", "smaller",
            "-S", "data=synthetic_full", "-S", "data.n_train=2000", "-S", "data.n_test=400",
            "-S", "model=fast",
        ],
        cwd=clone,
    )  # fmt: skip
    data = experiments(clone)["smaller"]
    params = data["params"]["params.yaml"]["data"]
    assert (params["data"]["n_train"], params["data"]["n_test"]) == (2000, 400)
    assert params["model"]["name"] == "fast"
    summary = data["metrics"]["reports/data.json"]["data"]
    assert summary["rows"]["application_train"] == 2000
    train = data["metrics"]["dvclive/train/metrics.json"]["data"]
    assert 0.6 < train["oof_auc"] < 1.0
    assert set(train["folds"]) == {"0", "1", "2", "auc_std"}  # the fast model's three folds


def test_a_queued_experiment_compares_costs(clone):
    """A queued experiment that changes only a cost: only the stages after train rerun."""
    run(["git", "checkout", "--", "."], cwd=clone)  # queue from the committed baseline
    run(["dvc", "exp", "run", "--queue", "--name", "cheap-misses", "-S", "cost.fn=5"], cwd=clone)
    run(["dvc", "exp", "run", "--run-all"], cwd=clone)
    shown = experiments(clone)["cheap-misses"]["metrics"]
    baseline = json.loads(run(["git", "show", "HEAD:models/threshold.json"], cwd=clone).stdout)
    cheap = shown["dvclive/threshold/metrics.json"]["data"]
    # Same model, cheaper missed defaults: refuse less (a higher threshold), pay less.
    assert cheap["threshold"] >= baseline["threshold"]
    assert cheap["cost_per_applicant"] < baseline["cost_per_applicant"]
    trained = json.loads(run(["git", "show", "HEAD:dvclive/train/metrics.json"], cwd=clone).stdout)
    assert shown["dvclive/train/metrics.json"]["data"]["oof_auc"] == trained["oof_auc"]
