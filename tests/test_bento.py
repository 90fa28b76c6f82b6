"""The Bento builds offline from bentofile.yaml; its Dockerfile installs the serving lock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_image_installs_uv_at_the_locked_version():
    """BentoML's Dockerfile installs uv from PyPI unless the image already has it: ours pins it."""
    locked = re.search(r"^uv==(\S+) ", (ROOT / "requirements.lock").read_text(), re.M)
    pinned = re.search(r'^UV_VERSION = "(\S+)"', (ROOT / "service.py").read_text(), re.M)
    assert locked and pinned and pinned[1] == locked[1]


def test_bento_builds_offline_with_a_dockerfile(packaged):
    bentoml = str(Path(sys.executable).parent / "bentoml")
    done = subprocess.run(
        [bentoml, "build", "--output", "tag"],
        cwd=ROOT,
        env=packaged["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    bento = Path(packaged["env"]["BENTOML_HOME"]) / "bentos" / name / version
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "uv pip sync --require-hashes src/requirements-serving.lock" in dockerfile
    assert "build-essential" not in dockerfile  # every serving package is a wheel
    assert (bento / "src" / "requirements-serving.lock").read_text() == (
        ROOT / "requirements-serving.lock"
    ).read_text()
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    models = [m["tag"] for s in info["services"] for m in s.get("models", [])]
    assert models == [packaged["manifest"]["tag"]]
    assert (bento / "src" / "service.py").exists()
    assert (bento / "src" / "src" / "credit_scoring" / "serving" / "scorer.py").exists()
