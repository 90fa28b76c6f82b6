"""The servers the serving benchmark compares, started and stopped by the tests' launcher.

Every BentoML variant is a :class:`tests.support.servers.Server` (a real ``bentoml serve
service:CreditScoring``, ready once every worker is up) with its settings in the environment;
the baseline is ``uvicorn benchmarks.fastapi_baseline:app`` started by the same
:func:`~tests.support.servers.launch`, ready once it answers a valid /predict. Each runs under a
``BENTOML_HOME`` of its own that shares the store's models, with its logs in a work directory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.http_client import HOST  # where the client connects, so where they listen
from tests.support.servers import (
    SERVICE_ENV,
    Server,
    answers,
    free_port,
    launch,
    serving_home,
    stop,
)

BENTOML_VARIANTS = {  # name: (label, environment overrides)
    "bentoml_defaults": ("BentoML defaults (metrics on, access log off)", {}),
    "bentoml_access_log": ("BentoML, access log on", {"CREDIT_SCORING_ACCESS_LOG": "true"}),
    "bentoml_no_metrics": ("BentoML, metrics off", {"CREDIT_SCORING_METRICS": "false"}),
    "bentoml_traced": ("BentoML, every request traced", {"CREDIT_SCORING_TRACE_RATE": "1"}),
}
FASTAPI = "fastapi"
READY_TIMEOUT_S = 180.0


@dataclass
class Settings:
    """What every server of the benchmark is started with."""

    tag: str
    bentoml_home: Path  # the model store, shared by every server's own home
    workdir: Path  # a temporary directory: decision logs and server logs
    ready_body: dict[str, Any]  # a valid /predict, which the FastAPI app must answer with 200


@dataclass
class Running:
    """A started server subprocess and where its decision log goes."""

    name: str
    port: int
    proc: subprocess.Popen
    decision_log: Path | None
    ready_s: float = 0.0  # from starting the process to its readiness


@contextlib.contextmanager
def serving(kind: str, settings: Settings, label: str) -> Iterator[Running]:
    """Start one server, wait until it is ready, and stop it afterwards.

    ``kind`` is ``fastapi`` or a key of BENTOML_VARIANTS; ``label`` names its log files.
    """
    log = settings.workdir / f"{label}.log"
    env = {
        **os.environ,
        **SERVICE_ENV,
        "BENTOML_HOME": str(settings.bentoml_home),
        "CREDIT_SCORING_MODEL": settings.tag,
    }
    started = time.perf_counter()
    if kind == FASTAPI:
        port, decision_log = free_port(), None
        env["BENTOML_HOME"] = str(serving_home(settings.bentoml_home, log.with_suffix(".bentoml")))
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.fastapi_baseline:app"]
        cmd += ["--host", HOST, "--port", str(port), "--workers", "1", "--no-access-log"]
        url = f"http://{HOST}:{port}/predict"
        proc = launch(cmd, env, log, lambda: answers(url, settings.ready_body), READY_TIMEOUT_S)
    else:
        decision_log = settings.workdir / f"{label}.sqlite3"
        env.update(BENTOML_VARIANTS[kind][1], CREDIT_SCORING_DECISION_LOG=str(decision_log))
        server = Server(env, log).start(READY_TIMEOUT_S)
        assert server.process is not None
        port, proc = server.port, server.process
    running = Running(label, port, proc, decision_log, time.perf_counter() - started)
    note(f"  {label} ready on :{port} in {running.ready_s:.1f} s")
    try:
        yield running
    finally:
        stop(proc)


def note(message: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)
