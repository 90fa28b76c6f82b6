"""How fast the BentoML service answers, against a bare FastAPI app serving the same package.

    python -m benchmarks.serving [--runs 3] [--rounds 8] [--slice 2.5] [--soak-seconds 60]
                                 [--json out.json]

Starts the servers itself on free loopback ports: ``bentoml serve service:CreditScoring`` (with
its defaults, with the access log on, with metrics off, with every request traced) and the
baseline ``uvicorn benchmarks.fastapi_baseline:app --workers 1 --no-access-log``, which scores
through the same :class:`Scorer` with nothing around it. Each run starts fresh servers, keeps
them all up, and measures, on test-population applicants sent with their ``client_id``:

* /predict and /explain latency (p50, p99) at one connection, after a warm-up;
* /predict_batch of 1,000 applicants, the median wall time of a call;
* /readyz and /livez latency (p50, p99, max) on a connection of their own while another scores
  batches of 2,000 and explains every contribution, one call after another;
* /predict throughput at 16 connections: ``--rounds`` rounds in which every server in turn
  takes ``--slice`` seconds of load, each round's BentoML figure divided by its FastAPI one.

Figures are medians over ``--runs`` runs and every ratio is taken within a round, because these
shared 2-core machines are noisy. A final soak (once) loads the default BentoML server for
``--soak-seconds`` and counts failed responses and the growth of its process tree's memory.
With the defaults the whole benchmark takes about 13 minutes.

The load generator is asyncio streams over HTTP/1.1 keep-alive with pre-encoded requests
(:mod:`benchmarks.http_client`), one coroutine per connection: the client shares the cores with
the server, so it must stay cheap. The servers start and stop through the tests' launcher
(:mod:`benchmarks.serving_servers`); :mod:`benchmarks.serving_report` writes the tables.
Decision logs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil  # BentoML's dependency: the servers' process trees

from benchmarks.common import machine
from benchmarks.http_client import Connection, fetch, get, post
from benchmarks.serving_report import report
from benchmarks.serving_servers import BENTOML_VARIANTS, FASTAPI, Running, Settings, note, serving
from credit_scoring.serving.package import MANIFEST, Manifest
from credit_scoring.serving.store import import_package

if TYPE_CHECKING:
    from credit_scoring.serving.package import Package
    from credit_scoring.serving.scorer import Scorer

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "models" / "package"  # what `make repro` or `dvc pull` leaves


# --- the servers' process trees -------------------------------------------------------------


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (BentoML's arbiter and its workers)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss_mib(pid: int) -> float:
    """Resident memory summed over the tree; a page shared by two processes counts twice."""
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 2**20


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the tree has used, to tell a busy server from a slow one."""
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Load:
    """What a stretch of load gave: statuses, per-request latencies and CPU use."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0  # cores this process kept busy
    server_cpu: float = 0.0  # cores the server's process tree kept busy

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1e3) if self.latencies else float("nan")


async def sequential(port: int, requests: Sequence[bytes], count: int) -> Load:
    """``count`` requests one after another on one connection, rotating through ``requests``."""
    conn, load = Connection(port), Load()
    await conn.open()
    start = time.perf_counter()
    async with asyncio.timeout(60 + count):
        for i in range(count):
            sent = time.perf_counter()
            status, _ = await conn.send(requests[i % len(requests)])
            load.latencies.append(time.perf_counter() - sent)
            load.statuses[status] += 1
    load.elapsed = time.perf_counter() - start
    await conn.close()
    return load


async def concurrent(
    port: int, requests: Sequence[bytes], connections: int, seconds: float, pid: int | None = None
) -> Load:
    """As many requests as ``connections`` keep-alive connections get answered in ``seconds``.

    Connections open before the clock starts; requests in flight at the deadline still count,
    and the elapsed time runs until the last one is answered.
    """
    conns = [Connection(port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    load = Load()
    stride = max(1, len(requests) // connections)

    async def worker(k: int) -> None:
        conn, i = conns[k], k * stride
        latencies, statuses = load.latencies, load.statuses
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status, _ = await conn.send(requests[i % len(requests)])
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
            i += 1

    server_cpu = tree_cpu_s(pid) if pid else 0.0
    client_cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    async with asyncio.timeout(seconds + 120):
        await asyncio.gather(*(worker(k) for k in range(connections)))
    load.elapsed = time.perf_counter() - start
    load.client_cpu = (time.process_time() - client_cpu) / load.elapsed
    if pid:
        load.server_cpu = (tree_cpu_s(pid) - server_cpu) / load.elapsed
    await asyncio.gather(*(c.close() for c in conns))
    return load


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Workload:
    """Pre-encoded requests: test-population applicants with their client_id."""

    predict: list[bytes]
    explain: list[bytes]
    batch: bytes
    batch_size: int
    heavy: list[bytes]  # a batch of MAX_BATCH and an explain of every contribution
    check: list[bytes]  # a few /predict requests whose answers both servers must agree on
    sample: dict[str, Any]  # one /predict body, the FastAPI baseline's readiness check


def load_applicants(tag: str) -> tuple[list[int], Scorer]:
    """The stored applications of the packaged test population, as the service would load them."""
    import bentoml

    from credit_scoring.serving.package import Package
    from credit_scoring.serving.scorer import Scorer

    stored = bentoml.models.BentoModel(tag).stored
    if stored is None:
        raise SystemExit(f"model {tag} is not in the BentoML model store")
    scorer = Scorer(Package.load(Path(stored.path), version=stored.tag.version))
    return scorable_ids(scorer.package), scorer


def scorable_ids(package: Package) -> list[int]:
    """The package's stored applicants that state every amount a decision needs (the others
    would be refused with a 400)."""
    return package.applications.stating(package.inputs.required)


MAX_BATCH = 2000  # the service's default limit


def workload(tag: str, applicants: int, batch_size: int) -> Workload:
    """Requests for ``applicants`` distinct applicants (seeded), one batch of ``batch_size``,
    and the heaviest calls the service takes."""
    ids, scorer = load_applicants(tag)
    rng = np.random.default_rng(0)
    pool = sorted(rng.choice(ids, size=min(applicants, len(ids)), replace=False).tolist())
    bodies = [{"features": scorer.application(cid), "client_id": cid} for cid in pool]
    batch = [
        {"features": scorer.application(ids[i % len(ids)]), "client_id": ids[i % len(ids)]}
        for i in range(batch_size)
    ]
    return Workload(
        predict=[post("/predict", b) for b in bodies],
        explain=[post("/explain", b) for b in bodies],
        batch=post("/predict_batch", {"applicants": batch}),
        batch_size=batch_size,
        heavy=[
            post("/predict_batch", {"applicants": (batch * MAX_BATCH)[:MAX_BATCH]}),
            post("/explain", {**bodies[0], "top_k": len(scorer.package.schema.features)}),
        ],
        check=[post("/predict", b) for b in bodies[:20]],
        sample=bodies[0],
    )


async def decisions(port: int, requests: Sequence[bytes]) -> list[dict[str, Any]]:
    """The answers to ``requests`` without the per-request id, for comparing servers."""
    out = []
    for request in requests:
        status, body = await fetch(port, request)
        answer = json.loads(body) if status == 200 else {"status": status}
        answer.pop("request_id", None)
        out.append(answer)
    return out


async def throughput(
    servers: Mapping[str, Running], work: Workload, args: argparse.Namespace
) -> dict[str, Any]:
    """/predict at ``--connections``, in ``--rounds`` rounds of one ``--slice`` per server.

    Every server is up at once and takes its turn in each round (in a rotated order), so each
    BentoML figure is divided by a FastAPI figure taken seconds apart: the machine's speed
    drifts by up to a factor of two within minutes, which a ratio of two separate ten-second
    loads would take for a difference between the servers.
    """
    names = list(servers)
    for server in servers.values():
        await concurrent(server.port, work.predict, args.connections, 1.0)
    slices: dict[str, list[Load]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            server = servers[name]
            slices[name].append(
                await concurrent(
                    server.port, work.predict, args.connections, args.slice, pid=server.proc.pid
                )
            )
    rps = {name: [load.ok / load.elapsed for load in loads] for name, loads in slices.items()}
    out: dict[str, Any] = {}
    for name, loads in slices.items():
        server = servers[name]
        note(f"  {name}: requests/s by round {[round(x) for x in rps[name]]}")
        ratios = [a / b for a, b in zip(rps[name], rps[FASTAPI], strict=True)]
        out[name] = {
            "rps": statistics.median(rps[name]),
            "rps_ratio": statistics.median(ratios),
            "p50_ms": statistics.median(load.percentile_ms(50) for load in loads),
            "p99_ms": statistics.median(load.percentile_ms(99) for load in loads),
            "failed": sum(load.failed for load in loads),
            "server_cpu": statistics.median(load.server_cpu for load in loads),
            "client_cpu": statistics.median(load.client_cpu for load in loads),
            "rss_mib": tree_rss_mib(server.proc.pid),
            "ready_s": server.ready_s,
        }
    return out


async def probes_under(port: int, heavy: Sequence[bytes], calls: int) -> tuple[Load, Load]:
    """The probes, one after another on a connection of their own, while ``calls`` heavy
    requests are answered in turn on another: the probes' load, and the heavy calls'."""
    probes, load = [get("/readyz"), get("/livez")], Load()
    conn = Connection(port)
    await conn.open()
    scoring = asyncio.create_task(sequential(port, heavy, calls))
    i = 0
    while not scoring.done():
        sent = time.perf_counter()
        status, _ = await conn.send(probes[i % len(probes)])
        load.latencies.append(time.perf_counter() - sent)
        load.statuses[status] += 1
        i += 1
        await asyncio.sleep(0.005)
    await conn.close()
    return load, scoring.result()


def _failed(name: str, load: Load) -> int:
    if load.failed:
        note(f"  {name}: {load.failed} failed responses {dict(load.statuses)}")
    return load.failed


async def one_run(
    settings: Settings, work: Workload, args: argparse.Namespace, run: int
) -> dict[str, Any]:
    """Every measurement once, on freshly started servers; flat figures and in-run ratios.

    All servers start (one after another, so start-up times are each its own) and stay up for
    the run; latencies are measured on one while the others idle.
    """
    out: dict[str, Any] = {}
    failed = 0
    with contextlib.ExitStack() as stack:
        servers = {
            kind: stack.enter_context(serving(kind, settings, f"run{run}-{kind}"))
            for kind in [*BENTOML_VARIANTS, FASTAPI]
        }
        for kind, name in (("bentoml", "bentoml_defaults"), (FASTAPI, FASTAPI)):
            port = servers[name].port
            await sequential(port, work.predict, args.warmup)
            lat = await sequential(port, work.predict, args.requests)
            out[f"{kind}_predict_p50_ms"] = lat.percentile_ms(50)
            out[f"{kind}_predict_p99_ms"] = lat.percentile_ms(99)
            failed += _failed(f"{kind} predict", lat)
        port = servers["bentoml_defaults"].port
        await sequential(port, work.explain, min(args.warmup, args.explain_requests))
        lat = await sequential(port, work.explain, args.explain_requests)
        out["bentoml_explain_p50_ms"] = lat.percentile_ms(50)
        out["bentoml_explain_p99_ms"] = lat.percentile_ms(99)
        failed += _failed("explain", lat)
        await sequential(port, [work.batch], 1)
        lat = await sequential(port, [work.batch], args.batch_calls)
        out["bentoml_batch_ms"] = lat.percentile_ms(50)
        out["bentoml_batch_ms_per_applicant"] = out["bentoml_batch_ms"] / work.batch_size
        failed += _failed("predict_batch", lat)
        probes, heavy = await probes_under(port, work.heavy, args.heavy_calls)
        for key, q in (("p50", 50), ("p99", 99), ("max", 100)):
            out[f"bentoml_probe_{key}_ms"] = probes.percentile_ms(q)
        failed += _failed("probes", probes) + _failed("heavy calls", heavy)
        out["same_decisions"] = await decisions(port, work.check) == await decisions(
            servers[FASTAPI].port, work.check
        )
        for name, figures in (await throughput(servers, work, args)).items():
            for key, value in figures.items():
                out[f"{name}_{key}"] = value
    for key in ("p50", "p99"):
        bentoml_ms, fastapi_ms = out[f"bentoml_predict_{key}_ms"], out[f"fastapi_predict_{key}_ms"]
        out[f"predict_{key}_ratio"] = bentoml_ms / fastapi_ms
    out["failed"] = failed + sum(out[f"{name}_failed"] for name in [*BENTOML_VARIANTS, FASTAPI])
    return out


async def soak(settings: Settings, work: Workload, args: argparse.Namespace) -> dict[str, Any]:
    """The default BentoML server under load for ``--soak-seconds``: failures and memory growth.

    RSS is sampled once a second; start and end are taken with the server warm and idle just
    before and just after the soak, so the growth is what the soak left behind.
    """
    with serving("bentoml_defaults", settings, "soak-bentoml_defaults") as server:
        pid = server.proc.pid
        sent_ok = (await sequential(server.port, work.predict, args.warmup)).ok
        warm = await concurrent(server.port, work.predict, args.connections, min(3.0, args.soak))
        sent_ok += warm.ok
        rss_start = tree_rss_mib(pid)
        samples: list[float] = []
        task = asyncio.create_task(
            concurrent(server.port, work.predict, args.connections, args.soak, pid=pid)
        )
        while not task.done():
            samples.append(tree_rss_mib(pid))
            await asyncio.wait({task}, timeout=1.0)
        load = task.result()
        rss_end = tree_rss_mib(pid)
        decision_log = server.decision_log
    logged = None
    if decision_log is not None and decision_log.exists():  # the server has flushed on stop
        with contextlib.closing(sqlite3.connect(decision_log)) as db:
            logged = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    return {
        "seconds": load.elapsed,
        "requests": sum(load.statuses.values()),
        "rps": load.ok / load.elapsed,
        "non_200": load.failed,
        "status_503": load.statuses[503],
        "connection_errors": load.statuses[0],
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "p99_ms": load.percentile_ms(99),
        "rss_start_mib": rss_start,
        "rss_end_mib": rss_end,
        "rss_growth_mib": rss_end - rss_start,
        "rss_peak_mib": max(samples, default=rss_end),
        "decisions_logged": logged,
        "decisions_expected": sent_ok + load.ok,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the runs; a flag holds only if it held in all."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [run[key] for run in runs]
        if isinstance(value, bool):
            out[key] = all(values)
        else:
            out[key] = statistics.median(values)
    return out


# --- the command ----------------------------------------------------------------------------


def default_tag() -> str | None:
    """The tag of the package DVC versions (models/package), else CREDIT_SCORING_MODEL."""
    if (PACKAGE / MANIFEST).exists():
        return Manifest.read(PACKAGE).tag
    return os.environ.get("CREDIT_SCORING_MODEL")


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every run, then the soak; servers and decision logs live in one temporary directory."""
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    note(f"loading {args.applicants} applicants of {args.tag} from {args.bentoml_home}")
    work = workload(args.tag, args.applicants, args.batch_size)
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        settings = Settings(args.tag, args.bentoml_home, Path(tmp), work.sample)
        runs = []
        for run in range(1, args.runs + 1):
            runs.append(await one_run(settings, work, args, run))
            shown = {k: round(v, 3) for k, v in runs[-1].items() if "ratio" in k or "rps" in k}
            note(f"run {run}/{args.runs}: {shown}")
        soaked = await soak(settings, work, args) if args.soak > 0 else None
    settings_out = {
        key: getattr(args, key)
        for key in (
            "connections",
            "rounds",
            "slice",
            "requests",
            "explain_requests",
            "batch_size",
            "batch_calls",
            "heavy_calls",
            "applicants",
            "warmup",
            "soak",
        )
    }
    return {
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
        "versions": {name: version(name) for name in ("bentoml", "fastapi", "uvicorn")},
        "tag": args.tag,
        "runs": args.runs,
        "settings": settings_out,
        "median": medians(runs),
        "per_run": runs,
        "soak": soaked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default=default_tag(), help="model tag (models/package)")
    parser.add_argument(
        "--bentoml-home",
        type=Path,
        default=Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")),
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8, help="throughput rounds")
    parser.add_argument("--slice", type=float, default=2.5, help="seconds of load per turn")
    parser.add_argument("--soak-seconds", dest="soak", type=float, default=60.0, help="0: none")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="/predict latency sample")
    parser.add_argument("--explain-requests", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-calls", type=int, default=10)
    parser.add_argument(
        "--heavy-calls", type=int, default=6, help="heavy calls the probes are timed under"
    )
    parser.add_argument("--applicants", type=int, default=300, help="distinct applicants")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.tag:
        parser.error("no --tag, and no models/package; run `make repro` or `dvc pull` first")
    os.environ["BENTOML_HOME"] = str(args.bentoml_home)
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"
    if args.tag == default_tag() and PACKAGE.exists():
        import_package(PACKAGE)
    result = asyncio.run(benchmark(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(report(result))


if __name__ == "__main__":
    main()
