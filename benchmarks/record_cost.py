"""What committing each decision's record before answering costs, against the fire-and-forget log.

    python -m benchmarks.record_cost [--before 3d79d1e] [--runs 3] [--seconds 10]
                                     [--requests 1000] [--connections 16]

Since the decision record, /predict answers only once its record is committed to SQLite: a
writer thread commits whatever is queued in one transaction (a group commit) and completes each
request's future, and the handler awaits it. Before (``--before``, by default 3d79d1e) the
handler queued its decisions to a writer thread that slept 50 ms and wrote batches, and
answered at once; a decision could be lost in a crash, but no answer ever waited on the disk.
This benchmark measures what the wait costs.

It checks out ``--before`` in a temporary ``git worktree`` and imports ``models/package`` into
a temporary BentoML store (``python -m credit_scoring.serving.store``). Both servers are
``bentoml serve service:CreditScoring`` on that package, with their defaults and the decision
log in a temporary file: **current** from the repository's root (as the tests' launcher starts
it; a working tree's uncommitted changes count), **fire_and_forget** from the worktree with
``PYTHONPATH`` on its ``src``, so that the old code is imported rather than the editable
install's (checked: its /predict answer has no ``recommendation``). The old code must load the
current package; it ignores keys it does not know.

Each run starts one server, warms it (``--warmup`` sequential requests and a second at
``--connections``), measures, stops it, then does the same with the other; odd runs start with
current, even runs with fire_and_forget. On /predict with stored test-population applicants
that state every required amount (:func:`benchmarks.serving.workload`):

* **one connection**: ``--requests`` sequential requests: p50 and p99 latency, requests/s;
* **``--connections`` connections**: ``--seconds`` of load: requests/s, p50 and p99.

Figures are medians over ``--runs``; each ratio (current / fire_and_forget) is taken within a
run, then its median reported, because these shared 2-core machines drift within minutes. Once
a server has stopped (gracefully, so the old log has flushed its queue), its rows are counted:
current must hold a ``decision`` record for every 200 it answered; for the old one the rows it
had written are reported. The load generator is the serving benchmark's
(:mod:`benchmarks.serving`, :mod:`benchmarks.http_client`). Progress goes to stderr; stdout
holds one JSON document. With the defaults a run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import machine
from benchmarks.http_client import HOST, fetch
from benchmarks.serving import PACKAGE, Workload, concurrent, sequential, workload
from benchmarks.serving_servers import READY_TIMEOUT_S, note
from tests.support.servers import (
    SERVICE_ENV,
    Server,
    answers,
    free_port,
    launch,
    serving_home,
    stop,
)

ROOT = Path(__file__).resolve().parents[1]
CURRENT, BEFORE = "current", "fire_and_forget"
TABLES = {CURRENT: "records WHERE kind = 'decision'", BEFORE: "decisions"}


def git(*args: str | Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *map(str, args)], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@contextlib.contextmanager
def worktree(rev: str, parent: Path) -> Iterator[Path]:
    """A detached checkout of ``rev`` under ``parent``, removed afterwards whatever happens."""
    path = parent / "before"
    git("worktree", "add", "--detach", path, rev)
    try:
        yield path
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "remove", "--force", path)
        git("worktree", "prune")


def store(package: Path, home: Path) -> str:
    """Import the package into the BentoML store at ``home``, as `make serve` does; its tag."""
    env = {**os.environ, **SERVICE_ENV, "BENTOML_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "credit_scoring.serving.store", str(package)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Up:
    port: int
    proc: subprocess.Popen
    log: Path  # the decision log / record file


@contextlib.contextmanager
def serving(kind: str, tag: str, home: Path, workdir: Path, label: str, tree: Path) -> Iterator[Up]:
    """``bentoml serve service:CreditScoring``: current from the root, the old from ``tree``."""
    records, log = workdir / f"{label}.sqlite3", workdir / f"{label}.log"
    env = {
        **os.environ,
        **SERVICE_ENV,
        "BENTOML_HOME": str(home),
        "CREDIT_SCORING_MODEL": tag,
        "CREDIT_SCORING_DECISION_LOG": str(records),
    }
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    if kind == CURRENT:
        server = Server(env, log).start(READY_TIMEOUT_S)
        assert server.process is not None
        port, proc = server.port, server.process
    else:
        # Server.start, but in the worktree, with its code ahead of the editable install.
        port = free_port()
        env["BENTOML_HOME"] = str(serving_home(home, log.with_suffix(".bentoml")))
        env["PYTHONPATH"] = f"{tree / 'src'}{os.pathsep}{tree}"
        cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", "service:CreditScoring"]
        cmd += ["--host", HOST, "--port", str(port)]

        def ready() -> bool:
            started = b"Service credit_scoring initialized" in log.read_bytes()
            return started and answers(f"http://{HOST}:{port}/readyz")

        proc = launch(cmd, env, log, ready, READY_TIMEOUT_S, cwd=tree)
    note(f"  {label} ready on :{port} in {time.perf_counter() - started:.1f} s")
    try:
        yield Up(port, proc, records)
    finally:
        stop(proc)


async def identify(kind: str, port: int, request: bytes) -> dict[str, Any]:
    """One /predict answer, checked to come from the code it should: only current recommends."""
    status, body = await fetch(port, request)
    if status != 200:
        raise SystemExit(f"{kind}: /predict answered {status}: {body[:500]!r}")
    answer = json.loads(body)
    if ("recommendation" in answer) != (kind == CURRENT):
        raise SystemExit(f"{kind} does not serve the code it should: {sorted(answer)}")
    return answer


def rows(path: Path, kind: str) -> int | None:
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(f"SELECT COUNT(*) FROM {TABLES[kind]}").fetchone()[0]


async def measure(
    kind: str, label: str, work: Workload, args: argparse.Namespace, tree: Path
) -> dict[str, Any]:
    """One server, started fresh: warm-up, one connection, then many; its rows once stopped."""
    with serving(kind, args.tag, args.home, args.workdir, label, tree) as up:
        answer = await identify(kind, up.port, work.predict[0])
        answered = 1
        warm = await sequential(up.port, work.predict, args.warmup)
        warm_many = await concurrent(up.port, work.predict, args.connections, 1.0)
        one = await sequential(up.port, work.predict, args.requests)
        many = await concurrent(
            up.port, work.predict, args.connections, args.seconds, pid=up.proc.pid
        )
        answered += sum(load.ok for load in (warm, warm_many, one, many))
        failed = sum(load.failed for load in (warm, warm_many, one, many))
    written = rows(up.log, kind)
    figures = {
        "one_p50_ms": one.percentile_ms(50),
        "one_p99_ms": one.percentile_ms(99),
        "one_rps": one.ok / one.elapsed,
        "many_rps": many.ok / many.elapsed,
        "many_p50_ms": many.percentile_ms(50),
        "many_p99_ms": many.percentile_ms(99),
        "many_server_cpu": many.server_cpu,
    }
    note(f"  {label}: { {k: round(v, 2) for k, v in figures.items()} }, failed {failed}")
    return {
        "figures": figures,
        "failed": failed,
        "statuses": {str(k): v for k, v in sorted((one.statuses + many.statuses).items())},
        "answered_200": answered,
        "rows": written,
        "probability": answer["probability"],
    }


def summary(per_run: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Medians of every figure, medians of the in-run ratios, and the record counts."""
    keys = list(per_run[0][CURRENT]["figures"])
    median = {
        kind: {k: statistics.median(run[kind]["figures"][k] for run in per_run) for k in keys}
        for kind in (CURRENT, BEFORE)
    }
    ratio = {
        k: statistics.median(
            run[CURRENT]["figures"][k] / run[BEFORE]["figures"][k] for run in per_run
        )
        for k in keys
    }
    current = [(run[CURRENT]["answered_200"], run[CURRENT]["rows"]) for run in per_run]
    before = [(run[BEFORE]["answered_200"], run[BEFORE]["rows"]) for run in per_run]
    return {
        "median": median,
        "ratio_current_over_fire_and_forget": ratio,
        "records": {
            CURRENT: {
                "answered_200": [a for a, _ in current],
                "records": [r for _, r in current],
                "every_200_has_a_record": all(r is not None and r >= a for a, r in current),
            },
            BEFORE: {
                "answered_200": [a for a, _ in before],
                "rows_written": [r for _, r in before],
            },
        },
        "failed": {kind: sum(run[kind]["failed"] for run in per_run) for kind in (CURRENT, BEFORE)},
        "same_probability": all(
            run[CURRENT]["probability"] == run[BEFORE]["probability"] for run in per_run
        ),
    }


async def benchmark(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    note(f"loading {args.applicants} applicants of {args.tag}")
    work = workload(args.tag, args.applicants, 1)
    note(f"{len(work.predict)} distinct /predict requests")
    per_run = []
    for run in range(1, args.runs + 1):
        order = [CURRENT, BEFORE] if run % 2 else [BEFORE, CURRENT]
        note(f"run {run}/{args.runs}: {' then '.join(order)}")
        per_run.append(
            {kind: await measure(kind, f"run{run}-{kind}", work, args, tree) for kind in order}
        )
    return {**summary(per_run), "per_run": per_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="3d79d1e", help="the fire-and-forget revision")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="load at --connections")
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=300, help="sequential requests first")
    parser.add_argument("--applicants", type=int, default=300, help="distinct applicants")
    parser.add_argument("--package", type=Path, default=PACKAGE)
    args = parser.parse_args()
    if not (args.package / "manifest.json").exists():
        parser.error(f"no package in {args.package}; run `make repro` or `dvc pull` first")
    before = git("rev-parse", "--verify", f"{args.before}^{{commit}}")
    current = git("describe", "--always", "--dirty", "--abbrev=40")
    load_before = os.getloadavg()[0]
    parent = Path(tempfile.mkdtemp(prefix="record-cost-"))
    try:
        args.home, args.workdir = parent / "bentoml", parent / "work"
        args.workdir.mkdir()
        args.tag = store(args.package, args.home)
        note(f"{args.tag} in a temporary store; checking out {before[:12]}")
        # This process reads the store too (the applicants), before it imports bentoml.
        os.environ["BENTOML_HOME"] = str(args.home)
        os.environ.update(SERVICE_ENV)
        with worktree(before, parent) as tree:
            result = asyncio.run(benchmark(args, tree))
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    out = {
        "what": "/predict with the record committed before answering (current) "
        "against the fire-and-forget decision log",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
        "revisions": {CURRENT: current, BEFORE: before},
        "tag": args.tag,
        "settings": {
            k: getattr(args, k)
            for k in ("runs", "seconds", "requests", "connections", "warmup", "applicants")
        },
        **result,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
