"""The Dask cluster a stage runs on: reached or started, checked, and its failures in one line.

``engine.address`` names a running scheduler (``tcp://host:8786``); left empty, the stage starts
a ``LocalCluster`` of ``engine.n_workers`` processes on this machine and stops it afterwards.
What a user can get wrong ends the stage with a :class:`~credit_scoring.errors.ClusterError`
that names the cluster: a scheduler that does not answer within ``engine.timeout``, workers
whose package versions differ from this process's, a worker that died during the stage.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import dask
from dask.utils import parse_bytes

from credit_scoring.cores import available_cores
from credit_scoring.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

LOCAL, DASK = "local", "dask"
# Versions that must agree between this process and the workers: what Dask needs to talk, and
# what the tasks run (a model fitted by another LightGBM, or aggregates by another polars, are
# other results). Python itself is compared too.
CHECKED_PACKAGES = (
    "dask",
    "distributed",
    "cloudpickle",
    "msgpack",
    "numpy",
    "pandas",
    "pyarrow",
    "polars",
    "lightgbm",
    "credit-scoring",
)


@dataclass(frozen=True)
class ClusterSpec:
    """The ``engine`` section when ``engine.name`` is ``dask`` (``conf/engine/dask.yaml``).

    ``n_workers``, ``threads_per_worker`` and ``memory_limit`` size a LocalCluster and are
    ignored when ``address`` names a scheduler; ``partition_size`` is the number of applicants
    one task handles, whichever the cluster. A LocalCluster never has more threads in all than
    the cores this process may use (:meth:`local_threads`): each LightGBM fit takes every thread
    of its worker, and threads beyond the cores spin against each other.
    """

    address: str
    n_workers: int
    threads_per_worker: int
    memory_limit: str
    timeout: float
    partition_size: int

    @classmethod
    def from_params(cls, engine: Mapping[str, Any]) -> ClusterSpec | None:
        """The cluster to run on, or None for the local engine.

        Raises:
            ConfigError: an unknown engine or key, or a value out of range, checked before any
                cluster is started.
        """
        name = engine.get("name")
        if name == LOCAL:
            return None
        if name != DASK:
            raise ConfigError(f"engine.name: {name!r} is not an engine; use {LOCAL} or {DASK}")
        keys = {f.name for f in fields(cls)}
        unknown = sorted(set(engine) - keys - {"name"})
        missing = sorted(keys - set(engine))
        if unknown or missing:
            raise ConfigError(f"engine: unknown key(s) {unknown}, missing key(s) {missing}")
        for key in ("n_workers", "threads_per_worker", "timeout", "partition_size"):
            if not isinstance(engine[key], int | float) or engine[key] <= 0:
                raise ConfigError(f"engine.{key} must be a positive number, got {engine[key]!r}")
        if str(engine["memory_limit"]) != "auto":
            try:
                parse_bytes(engine["memory_limit"])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"engine.memory_limit: {engine['memory_limit']!r} is not a size such as"
                    " 4GiB, nor auto"
                ) from None
        return cls(
            address=str(engine["address"] or ""),
            n_workers=int(engine["n_workers"]),
            threads_per_worker=int(engine["threads_per_worker"]),
            memory_limit=str(engine["memory_limit"]),
            timeout=float(engine["timeout"]),
            partition_size=int(engine["partition_size"]),
        )

    def local_threads(self, cores: int) -> int:
        """The threads of each LocalCluster worker on ``cores`` cores: ``threads_per_worker``,
        lowered until the workers' threads fit the cores (never below one)."""
        return max(1, min(self.threads_per_worker, cores // self.n_workers))

    @property
    def where(self) -> str:
        """The cluster in words, for messages."""
        if self.address:
            return f"the Dask scheduler at {self.address}"
        return f"a LocalCluster of {self.n_workers} workers"


def _start(spec: ClusterSpec, stack: ExitStack) -> Client:
    """The client (and the LocalCluster), entered into ``stack`` so they close with it."""
    from distributed import Client, LocalCluster
    from distributed.versions import VersionMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VersionMismatchWarning)  # checked after, in one line
        try:
            if spec.address:
                return stack.enter_context(Client(spec.address, timeout=spec.timeout))
            cores = available_cores()
            threads = spec.local_threads(cores)
            if threads * spec.n_workers > cores or threads < spec.threads_per_worker:
                log.warning(
                    "engine: %d workers of %d threads on %d cores; each worker gets %d thread(s)",
                    spec.n_workers,
                    spec.threads_per_worker,
                    cores,
                    threads,
                )
            # A task bound to a worker that died fails after the timeout, instead of waiting
            # for that worker forever.
            with dask.config.set({"distributed.scheduler.no-workers-timeout": spec.timeout}):
                cluster = LocalCluster(
                    n_workers=spec.n_workers,
                    threads_per_worker=threads,
                    memory_limit=spec.memory_limit,
                    processes=True,
                    dashboard_address=":0",  # any free port: two stages may run at once
                    silence_logs=logging.ERROR,
                )
            stack.enter_context(cluster)
            return stack.enter_context(Client(cluster, timeout=spec.timeout))
        except OSError:  # distributed's connect timeout (refused, unknown host...)
            raise ClusterError(
                f"cannot reach {spec.where} within {spec.timeout:g} s (engine.timeout)"
            ) from None


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Client]:
    """A ``distributed.Client`` of the configured cluster, closed on exit with any LocalCluster.

    Logs the cluster and its dashboard link. A worker that dies inside the block (its nanny
    kills it past its memory limit, or its machine is lost) fails the task it ran: past Dask's
    allowed failures (``KilledWorker``), or at once for a task bound to it, as LightGBM binds
    each worker's part of a fit; either becomes a :class:`ClusterError`.

    Raises:
        ClusterError: the scheduler cannot be reached, or no worker joins it, within
            ``spec.timeout``; the versions differ (:func:`check_versions`); a worker died.
    """
    # Imported here: the local engine reads ClusterSpec too, and never needs distributed.
    from distributed import KilledWorker
    from distributed.scheduler import NoValidWorkerError

    with ExitStack() as stack:
        client = _start(spec, stack)
        try:
            client.wait_for_workers(1, timeout=spec.timeout)
        except TimeoutError:
            raise ClusterError(
                f"no worker joined {spec.where} within {spec.timeout:g} s (engine.timeout)"
            ) from None
        check_versions(client, spec)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        log.info(
            "Dask cluster %s: %d workers, %d threads; dashboard %s",
            client.scheduler.address,
            len(workers),
            sum(w["nthreads"] for w in workers.values()),
            client.dashboard_link,
        )
        try:
            yield client
        except KilledWorker as err:
            limit = f"engine.memory_limit={spec.memory_limit}"
            limit = "its memory limit" if spec.address else limit
            raise ClusterError(
                f"a worker of {spec.where} died running {err.task!r} (last on"
                f" {err.last_worker.address}): past {limit}, or crashed, or lost; give workers"
                " more memory or lower engine.partition_size"
            ) from None
        except NoValidWorkerError as err:
            raise ClusterError(
                f"a worker of {spec.where} was lost during a LightGBM fit, which binds a part"
                f" to each worker, and {err.task!r} could not run elsewhere"
            ) from None


def check_versions(client: Client, spec: ClusterSpec) -> None:
    """Fail when a worker runs other versions of the packages the stages rely on.

    ``Client.get_versions(check=True)`` only warns, with a table; a stage stops instead, with
    the first difference in one line.

    Raises:
        ClusterError: a package (or Python) differs between this process and a worker.
    """
    versions = client.get_versions(packages=list(CHECKED_PACKAGES))
    ours = versions["client"]["packages"]
    for address, worker in sorted(versions["workers"].items()):
        theirs = worker.get("packages", {}) if isinstance(worker, dict) else {}
        for package in ("python", *CHECKED_PACKAGES):
            if theirs.get(package) != ours.get(package):
                raise ClusterError(
                    f"{package} differs between this process ({ours.get(package)}) and the"
                    f" worker {address} ({theirs.get(package)}) of {spec.where}; install the"
                    " same versions (requirements.lock) on every worker"
                )
