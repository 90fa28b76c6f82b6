"""The Bento builds offline from bentofile.yaml, with a Dockerfile and the lock's versions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow


def locked_versions() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_bentofile_pins_the_locked_versions():
    locked = locked_versions()
    packages = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["python"]["packages"]
    for pin in packages:
        name, version = pin.split("==")
        assert locked[name.lower()] == version, f"{pin} differs from requirements.lock"


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
    assert "FROM python:3.11" in dockerfile
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    models = [m["tag"] for s in info["services"] for m in s.get("models", [])]
    assert models == [packaged["manifest"]["tag"]]
    assert (bento / "src" / "service.py").exists()
    assert (bento / "src" / "src" / "credit_scoring" / "serving" / "scorer.py").exists()
