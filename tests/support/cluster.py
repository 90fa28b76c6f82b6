"""Dask clusters for the engine's tests and benchmark, and ones that break as real ones do.

:func:`local_cluster` starts worker processes of one thread each. :class:`KillOnTask` is a
worker plugin that kills its worker process as a task starts, as the kernel's OOM killer or a
lost machine would; :func:`worker_with_versions` starts a worker whose environment reports other
package versions, as one installed from another lock file would. Workers import this module by
name (``tests.support.cluster``), as pytest and the benchmarks do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import dask
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

ROOT = Path(__file__).resolve().parents[2]


def local_cluster(workers: int = 2, memory_limit: str = "auto", **config: object) -> LocalCluster:
    """``workers`` processes of one thread; the scheduler runs here, with Dask ``config``."""
    with dask.config.set(config):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )


class KillOnTask(WorkerPlugin):
    """SIGKILL the worker process as a task whose key names ``function`` starts running.

    Dask fuses a function's tasks with their neighbours', so the key holds its name somewhere
    (``operation-sort_index-_aggregate_partition-…``), not necessarily first.
    """

    def __init__(self, function: str) -> None:
        self.function = function

    def transition(self, key: str | tuple, start: str, finish: str, **kwargs: object) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if finish == "executing" and self.function in str(name):
            os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def worker_with_versions(address: str, versions: Mapping[str, str]) -> Iterator[None]:
    """A `dask worker` process, the first of the scheduler at ``address``, whose installed
    metadata says ``versions`` (package name to version); the packages are this environment's.

    A distribution's metadata found first on ``sys.path`` is the one ``importlib.metadata``, and
    so Dask's version report, reads: a ``PYTHONPATH`` folder of ``.dist-info`` entries is enough.
    """
    with tempfile.TemporaryDirectory() as folder:
        for name, version in versions.items():
            info = Path(folder) / f"{name.replace('-', '_')}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
            )
        path = os.pathsep.join([folder, str(ROOT), os.environ.get("PYTHONPATH", "")])
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"],
            env={**os.environ, "PYTHONPATH": path},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with Client(address, timeout=30) as client:
                client.wait_for_workers(1, timeout=60)
            yield
        finally:
            worker.terminate()
            worker.wait(timeout=30)
