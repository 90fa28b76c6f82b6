"""Shared fixtures: small synthetic tables, the repository's root, and a packaged model served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from credit_scoring.sources.synthetic import generate
from tests.support.servers import SERVICE_ENV, Server
from tests.support.stages import run_stage, write_params

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_train": 3000, "n_test": 600, "seed": 7}
KEY_VALUE = "test-key-0123456789abcdef"  # the `keyed` service's API key


@pytest.fixture(scope="session")
def synthetic() -> dict[str, pd.DataFrame]:
    return generate(**SMALL)


def write_kaggle_csvs(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write tables the way Kaggle ships them: one CSV each, header, no index, empty for missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


STAGES = ("download", "aggregate", "features", "train", "threshold", "validate", "package")


@pytest.fixture(scope="session")
def packaged(tmp_path_factory) -> dict[str, Any]:
    """A small pipeline run (the real stage entry points, without DVC) put into a fresh store.

    Returns the run's folder, its params and the environment that points BentoML at the store.
    """
    work = tmp_path_factory.mktemp("packaged")
    write_params(work, ["data.n_train=3000", "data.n_test=600", "data.seed=11", "model=fast"])
    env = {
        **os.environ,
        **SERVICE_ENV,
        "BENTOML_HOME": str(work / "bentoml"),
        "PYTHONPATH": str(ROOT),
    }
    for stage in STAGES:  # in process: a failing stage fails the fixture with its traceback
        run_stage(stage, work)
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


@pytest.fixture(scope="session")
def service(packaged, tmp_path_factory) -> Iterator[Server]:
    """The service over HTTP, with its decision log in a temporary folder."""
    folder = tmp_path_factory.mktemp("service")
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(folder / "decisions.sqlite3")}
    server = Server(env, folder / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed(packaged, tmp_path_factory) -> Iterator[Server]:
    """The service with an API key read from a secret file."""
    folder = tmp_path_factory.mktemp("keyed")
    (folder / "key").write_text(KEY_VALUE + "\n")
    env = {
        **packaged["env"],
        "CREDIT_SCORING_DECISION_LOG": str(folder / "decisions.sqlite3"),
        "CREDIT_SCORING_API_KEY_FILE": str(folder / "key"),
    }
    server = Server(env, folder / "server.log").start()
    yield server
    server.stop()
