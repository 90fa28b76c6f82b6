"""The OCI engine the container tests build and run images with, made usable on this machine.

Docker where its engine answers; else Podman, which on the test machines needs the workaround
in tests/support/podman (an OCI runtime that drops the rlimits the sandbox refuses, and a local
stand-in for the python:3.11-slim base, as no registry is reachable). Where neither can run a
container the tests skip, except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PODMAN = Path(__file__).resolve().parent / "podman"


def engine() -> dict[str, str]:
    """``ENGINE`` (and Podman's ``CONTAINERS_CONF``) for `make container`, or skip / fail."""
    if shutil.which("docker") and _succeeds(["docker", "info"]):
        return {"ENGINE": "docker"}
    if shutil.which("podman") and os.geteuid() == 0:
        prepared = subprocess.run(
            [str(PODMAN / "prepare.sh")], capture_output=True, text=True, timeout=600
        )
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        return {"ENGINE": "podman", "CONTAINERS_CONF": prepared.stdout.strip()}
    reason = "no Docker engine, and no Podman run as root, to build and run the image"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run installs Podman)")
    pytest.skip(reason)


def _succeeds(args: list[str]) -> bool:
    try:
        return subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False
