"""Shared fixtures: small synthetic tables, the repository's root, and a packaged model served."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from credit_scoring.config import compose_params
from credit_scoring.serving.store import serving_home
from credit_scoring.sources.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_train": 3000, "n_test": 600, "seed": 7}


@pytest.fixture(scope="session")
def synthetic() -> dict[str, pd.DataFrame]:
    return generate(**SMALL)


def write_kaggle_csvs(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write tables the way Kaggle ships them: one CSV each, header, no index, empty for missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


STAGES = ("download", "aggregate", "features", "train", "threshold", "package")
# Stages run in a temporary folder; the aggregation spec they read stays the repository's.
SPEC = "aggregate.spec=" + str(
    ROOT / yaml.safe_load((ROOT / "params.yaml").read_text())["aggregate"]["spec"]
)
SERVICE_ENV = {"BENTOML_DO_NOT_TRACK": "true", "GRADIO_ANALYTICS_ENABLED": "False"}


@pytest.fixture(scope="session")
def packaged(tmp_path_factory) -> dict[str, Any]:
    """A small pipeline run (the real stage entry points, without DVC) put into a fresh store.

    Returns the run's folder, its params and the environment that points BentoML at the store.
    """
    work = tmp_path_factory.mktemp("packaged")
    overrides = ["data.n_train=3000", "data.n_test=600", "data.seed=11", "model=fast", SPEC]
    (work / "params.yaml").write_text(compose_params(ROOT / "conf", overrides))
    env = {
        **os.environ,
        **SERVICE_ENV,
        "BENTOML_HOME": str(work / "bentoml"),
        "PYTHONPATH": str(ROOT),
    }
    for stage in STAGES:
        done = subprocess.run(
            [sys.executable, "-m", f"pipelines.{stage}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{stage} failed:\n{done.stderr[-3000:]}"
    package = work / "models" / "package"
    manifest = json.loads((package / "manifest.json").read_text())
    stored = subprocess.run(  # into the store as `make serve` does it
        [sys.executable, "-m", "credit_scoring.serving.store", str(package)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stored.stdout.strip() == manifest["tag"], stored.stderr[-3000:]
    env["CREDIT_SCORING_MODEL"] = manifest["tag"]
    return {
        "work": work,
        "env": env,
        "manifest": manifest,
        "params": yaml.safe_load((work / "params.yaml").read_text()),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether a GET of ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def launch(
    args: list[str],
    env: dict[str, str],
    log: Path,
    ready: Callable[[], bool],
    timeout: float,
    cwd: Path = ROOT,
) -> subprocess.Popen:
    """Start a server in ``cwd``, its output appended to ``log``, and wait.

    The server leads a process group of its own, so that stopping it stops what it started (a
    `make serve` and its `bentoml serve`). Returns once ``ready()``; if the process exits
    first, or ``timeout`` passes (then it is stopped), raises with the end of the log.
    """
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ready():
            return process
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{' '.join(args)} not ready in {timeout} s:\n{tail(log)}")
        time.sleep(0.3)
    raise RuntimeError(f"{' '.join(args)} exited:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


class Server:
    """A real `bentoml serve` of service.py in a subprocess, on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Server:
        """Start, and return once every worker is up: /readyz answers for the first one only."""
        args = [str(Path(sys.executable).parent / "bentoml"), "serve", "service:CreditScoring"]
        args += ["--host", "127.0.0.1", "--port", str(self.port)]
        home = serving_home(Path(self.env["BENTOML_HOME"]), self.log.with_suffix(".bentoml"))
        env = {**self.env, "BENTOML_HOME": str(home)}
        workers = int(env.get("CREDIT_SCORING_WORKERS", "1"))
        offset = self.log.stat().st_size if self.log.exists() else 0

        def ready() -> bool:
            with self.log.open("rb") as fh:
                fh.seek(offset)
                started = fh.read().count(b"Service credit_scoring initialized")
            return started >= workers and answers(f"{self.url}/readyz")

        self.process = launch(args, env, self.log, ready, timeout)
        return self

    def stop(self) -> None:
        stop(self.process)


def stop(process: subprocess.Popen | None, timeout: float = 30, group: bool = False) -> None:
    """Stop as an operator would (SIGTERM: graceful shutdown), then make sure all of it is gone.

    ``group`` sends the signal to the whole process group, as a terminal's Ctrl-C does: what a
    `make` target started does not hear a signal sent to `make` alone. Whatever of the group
    outlives the wait is killed.
    """
    if process and process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def service(packaged, tmp_path_factory) -> Iterator[Server]:
    """The service over HTTP, with its decision log in a temporary folder."""
    folder = tmp_path_factory.mktemp("service")
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(folder / "decisions.sqlite3")}
    server = Server(env, folder / "server.log").start()
    yield server
    server.stop()
