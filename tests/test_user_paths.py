"""The user's paths, as the README tells them, on fresh clones with empty stores.

Each test runs the README's commands (`make repro`, `make serve`, `make ui`, `dvc push/pull`,
`dvc exp run/apply/show`) in a `git clone` of this repository, so it sees what is committed,
not the working tree, with an empty DVC cache and an empty BentoML home of its own.
Each clone sets up its own virtual environment, as a newcomer's `make repro` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from gradio_client import Client

from conftest import ROOT
from tests.support import containers
from tests.support.cpu import another_cpu
from tests.support.servers import SERVICE_ENV, answers, free_port, launch, stop

pytestmark = pytest.mark.slow

ANSWER = 4  # the service's answer among the outputs of the screen's /score_by_id


@dataclass
class Clone:
    """A fresh clone with a BentoML home of its own, and the environment a user's shell has."""

    path: Path
    env: dict[str, str]

    @classmethod
    def of(cls, target: Path) -> Clone:
        run(["git", "clone", "--quiet", str(ROOT), str(target)], cwd=ROOT, env=dict(os.environ))
        ours = str(Path(sys.executable).parent)  # this suite's virtual environment stays out
        path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != ours)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env |= {**SERVICE_ENV, "PATH": path, "BENTOML_HOME": str(target.parent / "bentoml")}
        return cls(target, env)

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """A command in the clone's virtual environment, with extra environment variables."""
        venv = {"PATH": f"{self.path / '.venv' / 'bin'}{os.pathsep}{self.env['PATH']}"}
        return run(list(args), cwd=self.path, env={**self.env, **venv, **extra})

    def serve(self, log: Path) -> Server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = launch(
            ["make", "serve", f"PORT={port}"],
            self.env,
            log,
            lambda: answers(f"{url}/readyz"),
            timeout=180,
            cwd=self.path,
        )
        return Server(url, process)

    def package(self) -> dict[str, Any]:
        return json.loads((self.path / "models" / "package" / "manifest.json").read_text())


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def post(self, endpoint: str, body: object) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/{endpoint}", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stop(self) -> None:
        stop(self.process, group=True)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr}"
    return done


def applicant(clone: Clone) -> dict[str, Any]:
    """The first test-population applicant, as a client sends it."""
    frame = pd.read_parquet(clone.path / "data" / "raw" / "application_test.parquet").head(1)
    row = json.loads(frame.to_json(orient="records"))[0]
    return {"client_id": row.pop("SK_ID_CURR"), "features": row}


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Iterator[Clone]:
    """A newcomer's clone after the README's first command."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = Clone.of(tmp_path_factory.mktemp("first") / "repo")
    run(["make", "repro"], cwd=clone.path, env=clone.env)
    yield clone
    shutil.rmtree(clone.path, ignore_errors=True)


def test_make_repro_reproduces_the_lock_and_leaves_the_tree_clean(first):
    assert first.run("git", "status", "--porcelain").stdout == ""  # dvc.lock included
    assert json.loads(first.run("dvc", "status", "--json").stdout) == {}
    for mentioned in ("reports/drift.html", "reports/drift.json", "reports/data.json"):
        assert (first.path / mentioned).is_file(), mentioned
    assert first.package()["tag"].startswith("credit_scoring:")


def test_another_cpu_reproduces_the_lock(first):
    """A colleague's or CI's CPU, with other BLAS kernels and SIMD loops, rebuilds every
    artifact to the same bits: the committed lock is the same for everyone."""
    first.run("dvc", "repro", "--force", **another_cpu())
    assert first.run("git", "status", "--porcelain").stdout == ""


def test_make_serve_serves_the_package_and_the_screen_agrees(first, tmp_path):
    server = first.serve(tmp_path / "serve.log")
    ui_port = free_port()
    screen = None
    try:
        body = applicant(first)
        scored = server.post("predict", body)
        assert scored["model_version"] == first.package()["version"]
        assert 0 < scored["probability"] < 1
        env = {
            **first.env,
            "CREDIT_SCORING_URL": server.url,
            "CREDIT_SCORING_UI_PORT": str(ui_port),
        }
        ui_url = f"http://127.0.0.1:{ui_port}"
        screen = launch(
            ["make", "ui"], env, tmp_path / "ui.log", lambda: answers(ui_url), 180, first.path
        )
        client = Client(ui_url, verbose=False, analytics_enabled=False, download_files=False)
        shown = client.predict(str(body["client_id"]), api_name="/score_by_id")[ANSWER]
        assert shown["probability"] == scored["probability"]
        assert shown["model_version"] == scored["model_version"]
    finally:
        stop(screen, timeout=20, group=True)
        server.stop()


KEY = "container-key-0123456789abcdef"
RECORD = "/home/bentoml/decisions/decisions.sqlite3"  # service.py's RECORD_FOLDER


def test_the_container_serves_what_make_serve_serves_and_keeps_its_records(first, tmp_path):
    """`make container`, `make container-run` with a key file and a records volume, the
    answers checked against `make serve`; a restart keeps every record, which an auditor
    verifies and replays inside the container."""
    engine = containers.engine()
    env, tool = {**first.env, **engine}, engine["ENGINE"]
    version = first.package()["version"]
    image, name = f"credit-scoring:{version}", f"cs-test-{os.getpid()}"
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "key").write_text(KEY + "\n")
    (secrets / "key").chmod(0o644)  # readable by the image's user; the folder keeps others out
    port = free_port()
    url, keyed = f"http://127.0.0.1:{port}", {"X-API-Key": KEY}
    run_args = [f"PORT={port}", f"CONTAINER={name}", f"RECORDS={name}", f"KEY_FILE={secrets}/key"]

    def engine_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([tool, *args], env=env, capture_output=True, text=True, timeout=300)
        assert not check or done.returncode == 0, done.stderr[-3000:]
        return done

    def start() -> None:
        first.run("make", "container-run", *run_args, **engine)
        deadline = time.monotonic() + 90
        while not answers(f"{url}/readyz"):
            assert time.monotonic() < deadline, engine_run("logs", name).stderr[-3000:]
            time.sleep(0.3)

    def post(path: str, body: object) -> dict[str, Any]:
        answer = httpx.post(f"{url}/{path}", json=body, headers=keyed, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    body = applicant(first)
    served = first.serve(tmp_path / "serve.log")
    try:
        expected = {path: served.post(path, body) for path in ("predict", "explain")}
    finally:
        served.stop()
    first.run("make", "container", **engine)
    try:
        start()
        assert httpx.post(f"{url}/predict", json=body, timeout=30).status_code == 401
        scored = post("predict", body)
        assert scored["model_version"] == version
        assert abs(scored["probability"] - expected["predict"]["probability"]) <= 1e-12
        explained = post("explain", body)
        assert explained["contributions"] == expected["explain"]["contributions"]
        batch = post("predict_batch", {"applicants": [body, body]})
        assert [r["probability"] for r in batch["results"]] == [scored["probability"]] * 2
        assert engine_run("exec", name, "id", "-u").stdout.strip() == "1034"  # not root
        assert engine_run("healthcheck", "run", name, check=False).returncode == 0

        first.run("make", "container-stop", f"CONTAINER={name}", **engine)
        start()  # the same volume: the record and its chain go on
        post("predict", body)
        audit = ["exec", name, "python", "-m", "credit_scoring.serving.audit"]
        verified = engine_run(*audit, "verify", RECORD)
        assert "5 records, chain valid" in verified.stderr  # predict, explain, 2 batch, predict
        package = f"/home/bentoml/bento/models/credit_scoring/{version}"
        replayed = engine_run(*audit, "replay", RECORD, "--package", package)
        assert "5 decisions replayed, 0 differences" in replayed.stderr
    finally:
        engine_run("rm", "--force", name, check=False)
        engine_run("volume", "rm", "--force", name, check=False)

    # Bad starts: the container stops at once, with one line that names the problem.
    (tmp_path / "root-owned").mkdir(mode=0o755)  # a volume the service's user cannot write
    for option, problem in [
        ("--env=CREDIT_SCORING_API_KEY=short", "CREDIT_SCORING_API_KEY: expected a key of"),
        ("--env=CREDIT_SCORING_MODEL=credit_scoring:nope", "not in the BentoML model store"),
        (f"--volume={tmp_path}/root-owned:/home/bentoml/decisions", "cannot be written"),
    ]:
        done = engine_run("run", "--rm", option, image, check=False)
        assert done.returncode != 0 and problem in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr


def test_a_teammate_pulls_and_serves_the_same_model_without_running_a_stage(
    first, tmp_path_factory, tmp_path
):
    body = applicant(first)
    server = first.serve(tmp_path / "first.log")
    try:
        expected = server.post("predict", body)
    finally:
        server.stop()
    first.run("dvc", "push")

    mate = Clone.of(tmp_path_factory.mktemp("teammate") / "repo")
    mate.run("make", "setup")  # a virtual environment of its own, as on a teammate's machine
    mate.run("dvc", "remote", "modify", "--local", "local", "url", str(first.path / "dvc-storage"))
    mate.run("dvc", "pull")
    assert json.loads(mate.run("dvc", "status", "--json").stdout) == {}  # nothing to rerun
    assert mate.package() == first.package()
    server = mate.serve(tmp_path / "mate.log")
    try:
        scored = server.post("predict", body)
    finally:
        server.stop()
    assert scored["model_version"] == expected["model_version"] == first.package()["version"]
    assert scored["probability"] == expected["probability"]
    assert mate.run("git", "status", "--porcelain").stdout == ""


def experiments(clone: Clone) -> dict[str, dict]:
    """The named experiments of `dvc exp show --json`, each as its data (params, metrics)."""
    shown = json.loads(clone.run("dvc", "exp", "show", "--json").stdout)
    return {
        exp["name"]: exp["revs"][0]["data"]
        for rev in shown
        for exp in rev.get("experiments") or []
        if exp.get("name")
    }


def test_a_queued_experiment_applied_is_what_make_serve_serves(first, tmp_path):
    """Cheaper missed defaults: only the stages after train rerun, and the service follows."""
    first.run("dvc", "exp", "run", "--queue", "--name", "cheaper-misses", "-S", "cost.fn=5")
    first.run("dvc", "exp", "run", "--run-all")
    # Done tasks stay in the queue, and `dvc exp show` gives them State and Executor columns
    # until they are removed (the README says so); the experiment itself stays.
    first.run("dvc", "queue", "remove", "--success")
    metrics = experiments(first)["cheaper-misses"]["metrics"]
    cheaper = metrics["dvclive/threshold/metrics.json"]["data"]
    baseline = json.loads((first.path / "models" / "threshold.json").read_text())
    assert cheaper["threshold"] > baseline["threshold"]  # refuse less
    assert cheaper["cost_per_applicant"] < baseline["cost_per_applicant"]  # and pay less
    trained = json.loads((first.path / "dvclive" / "train" / "metrics.json").read_text())
    assert metrics["dvclive/train/metrics.json"]["data"] == trained  # the model did not retrain

    first.run("dvc", "exp", "apply", "cheaper-misses")
    server = first.serve(tmp_path / "serve.log")
    try:
        info = server.post("model_info", {})
        assert info["version"] == first.package()["version"]
        assert info["costs"]["fn"] == 5
        assert info["threshold"] == cheaper["threshold"]
    finally:
        server.stop()
        first.run("git", "checkout", "--", ".")
        first.run("dvc", "checkout")


def test_exp_show_names_the_headline_figures_within_a_terminal_width(first):
    """With no options, a 120-column terminal shows the names and the headline metrics."""
    table = first.run("dvc", "exp", "show").stdout  # through a pipe: what the pager gets
    header = next(line for line in table.splitlines() if "Experiment" in line)
    for name in ("Experiment", "oof_auc", "cost_per_applicant", "threshold"):
        assert name in header[:120], header[:120]
    assert "…" not in table
    assert "cheaper-misses" in table


def test_an_experiment_switches_the_data_group(first):
    first.run(
        "dvc", "exp", "run", "--name", "smaller",
        "-S", "data=synthetic_full", "-S", "data.n_train=2000", "-S", "data.n_test=400",
        "-S", "model=fast",
    )  # fmt: skip
    data = experiments(first)["smaller"]
    params = data["params"]["params.yaml"]["data"]
    assert (params["data"]["n_train"], params["data"]["n_test"]) == (2000, 400)
    assert params["model"]["name"] == "fast"
    train = data["metrics"]["dvclive/train/metrics.json"]["data"]
    assert 0.6 < train["oof_auc"] < 1.0
