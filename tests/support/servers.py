"""Start and stop the servers the tests and the benchmarks talk to, and wait until they answer.

One launcher for both: :func:`launch` starts any server command in a process group of its own
and waits until a ``ready()`` check holds; :class:`Server` is a real `bentoml serve` of
service.py on a free loopback port; :func:`stop` stops either as an operator would. Both import
it as ``tests.support.servers``: the benchmarks run from the repository's root, and pytest puts
the root on ``sys.path`` (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ENV = {"BENTOML_DO_NOT_TRACK": "true", "GRADIO_ANALYTICS_ENABLED": "False"}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, json: Any = None) -> bool:
    """Whether a GET of ``url`` (a POST of ``json``, if given) answers 200 now."""
    try:
        if json is None:
            return httpx.get(url, timeout=2).status_code == 200
        return httpx.post(url, json=json, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def serving_home(store: Path, home: Path) -> Path:
    """A BENTOML_HOME of its own for one service, sharing the models of ``store``.

    `bentoml serve` empties ``$BENTOML_HOME/prometheus_multiproc_dir`` as it starts, so a second
    service under the same home silences the first one's metrics; the models can be shared.
    """
    home.mkdir(parents=True, exist_ok=True)
    models = home / "models"
    if not models.exists():
        models.symlink_to(store.resolve() / "models", target_is_directory=True)
    return home


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
    """A real `bentoml serve` of service.py in a subprocess, on a free loopback port.

    ``env`` names the model store (``BENTOML_HOME``); the server runs under a home of its own
    next to ``log`` that shares the store's models (:func:`serving_home`).
    """

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
