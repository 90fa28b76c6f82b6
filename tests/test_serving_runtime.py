"""The service runs on the serving runtime alone: requirements-serving.lock, and nothing else.

What the Bento's image installs is requirements-serving.lock (bentofile.yaml). These tests hold
that lock to requirements.lock's pins and hashes, and start a real `bentoml serve` in which
every other installed package fails to import (tests/support/serving_only), as in the image:
it must start, score, explain and record exactly as the development service does.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement

from credit_scoring.serving.package import Package
from credit_scoring.serving.scorer import Scorer
from tests.support.servers import ROOT, Server

pytestmark = pytest.mark.slow

LOCK, FULL = ROOT / "requirements-serving.lock", ROOT / "requirements.lock"
ONLY_SERVING = ROOT / "tests" / "support" / "serving_only"
TRAINING = ["sklearn", "pandas", "polars", "evidently", "fairlearn", "hydra", "dvc", "dask"]


def pins(lock: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Each package of a uv lock file: its version and its hashes."""
    found = re.findall(
        r"^([A-Za-z0-9][\w.-]*)==(\S+)((?: \\\n\s+--hash=\S+)+)", lock.read_text(), re.M
    )
    return {
        name.lower(): (version, frozenset(re.findall(r"--hash=(\S+)", hashes)))
        for name, version, hashes in found
    }


def only_serving(env: dict[str, str]) -> dict[str, str]:
    """``env`` in which only the serving lock's packages import."""
    return {
        **env,
        "PYTHONPATH": f"{ONLY_SERVING}:{env.get('PYTHONPATH', ROOT)}",
        "CREDIT_SCORING_ONLY_PACKAGES": str(LOCK),
    }


def test_the_serving_lock_is_requirements_lock_cut_to_the_closure_of_what_serving_imports():
    serving, full = pins(LOCK), pins(FULL)
    assert {"bentoml", "lightgbm", "numpy", "scipy", "orjson"} <= set(serving)
    assert {name: full.get(name) for name in serving} == serving  # same versions, same hashes
    # Closed: every dependency of a locked package (on this platform) is locked too.
    missing = {
        f"{name} needs {req.name}"
        for name in serving
        for text in importlib.metadata.requires(name) or []
        if (req := Requirement(text)).marker is None or req.marker.evaluate({"extra": ""})
        if req.name.lower().replace("_", "-") not in serving
    }
    assert not missing
    assert not {"scikit-learn", "pandas", "pyarrow", "polars", "dask", "dvc"} & set(serving)


def test_the_runtime_check_really_hides_the_training_libraries(packaged):
    for module in TRAINING:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            env=only_serving(packaged["env"]),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1 and "not in the serving lock" in done.stderr, module


@pytest.fixture(scope="module")
def serving_only(packaged, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serving_only")
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(folder / "decisions.sqlite3")}
    server = Server(only_serving(env), folder / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bodies(packaged) -> list[dict[str, Any]]:
    """Three stored applicants that state what a decision needs, as requests."""
    stored = Path(packaged["env"]["BENTOML_HOME"]) / "models" / "credit_scoring"
    version = packaged["manifest"]["version"]
    scorer = Scorer(Package.load(stored / version, version=version))
    chosen = scorer.package.applications.stating(scorer.package.inputs.required)[:3]
    return [{"features": scorer.application(cid), "client_id": cid} for cid in chosen]


def post(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/{path}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_service_starts_scores_and_explains_with_the_serving_lock_alone(
    serving_only, service, bodies
):
    for body in bodies:
        alone, full = post(serving_only, "predict", body), post(service, "predict", body)
        assert alone["probability"] == pytest.approx(full["probability"], abs=1e-12, rel=0)
        assert (alone["decision"], alone["reasons"]) == (full["decision"], full["reasons"])
    explained = post(serving_only, "explain", bodies[0])
    assert explained["contributions"] == post(service, "explain", bodies[0])["contributions"]
    batch = post(serving_only, "predict_batch", {"applicants": bodies})
    assert [r["probability"] for r in batch["results"]] == [
        post(service, "predict", b)["probability"] for b in bodies
    ]
    assert post(serving_only, "applicant", {"client_id": bodies[0]["client_id"]})["features"]
    log = serving_only.log.read_text()
    assert "not in the serving lock" not in log and "Traceback" not in log
