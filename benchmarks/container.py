"""The service's image against `make serve` on the same machine: size, cold start, latency.

    python -m benchmarks.container [--engine podman] [--runs 3] [--requests 400]

Needs `make container` first (the image ``credit-scoring:<package version>`` of
``models/package``) and an engine that runs containers; on the test machines, Podman with
``CONTAINERS_CONF`` from ``tests/support/podman/prepare.sh``. Each run starts the container
(its record on a fresh volume) and times it from ``run`` to a ready ``/readyz`` (the cold
start), starts ``bentoml serve`` of the same package beside it, then sends ``--requests``
/predict calls of one applicant to each on one keep-alive connection, alternating in slices of
20 so that both see the same noise. Figures are medians over ``--runs``; the latency is a ratio
to `make serve` measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from benchmarks.http_client import Connection, post
from credit_scoring.serving.package import Package
from credit_scoring.serving.scorer import Scorer
from credit_scoring.serving.store import import_package
from tests.support.servers import SERVICE_ENV, Server, answers, free_port

PACKAGE = Path("models/package")
SLICE = 20


def engine_run(engine: str, *args: str) -> str:
    return subprocess.run([engine, *args], check=True, capture_output=True, text=True).stdout


def start_container(engine: str, image: str, name: str, port: int) -> float:
    """Seconds from `run` to a /readyz that answers 200."""
    started = time.perf_counter()
    engine_run(
        engine,
        "run",
        "--detach",
        "--name",
        name,
        "--publish",
        f"127.0.0.1:{port}:3000",
        "--volume",
        f"{name}:/home/bentoml/decisions",
        image,
    )
    while not answers(f"http://127.0.0.1:{port}/readyz"):
        if time.perf_counter() - started > 120:
            raise SystemExit(engine_run(engine, "logs", name))
        time.sleep(0.05)
    return time.perf_counter() - started


async def latencies(ports: dict[str, int], request: bytes, count: int) -> dict[str, list[float]]:
    """Per server, the wall time of each /predict, in slices taken in turn."""
    connections = {name: Connection(port) for name, port in ports.items()}
    times: dict[str, list[float]] = {name: [] for name in ports}
    for conn in connections.values():  # warm-up
        for _ in range(SLICE):
            await conn.send(request)
    for _ in range(count // SLICE):
        for name, conn in connections.items():
            for _ in range(SLICE):
                began = time.perf_counter()
                status, _ = await conn.send(request)
                times[name].append(time.perf_counter() - began)
                assert status == 200, f"{name} answered {status}"
    for conn in connections.values():
        await conn.close()
    return times


def one_run(engine: str, image: str, tag: str, request: bytes, count: int) -> dict[str, float]:
    name, work = f"cs-bench-{os.getpid()}", Path(tempfile.mkdtemp(prefix="container-bench-"))
    env = {
        **os.environ,
        **SERVICE_ENV,
        "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")),
        "CREDIT_SCORING_MODEL": tag,
        "CREDIT_SCORING_DECISION_LOG": str(work / "decisions.sqlite3"),
    }
    port = free_port()
    server = None
    try:
        cold = start_container(engine, image, name, port)
        server = Server(env, work / "serve.log").start()
        times = asyncio.run(latencies({"container": port, "serve": server.port}, request, count))
    finally:
        if server:
            server.stop()
        subprocess.run([engine, "rm", "--force", name], capture_output=True)
        subprocess.run([engine, "volume", "rm", "--force", name], capture_output=True)
    container, serve = (statistics.median(times[k]) * 1e3 for k in ("container", "serve"))
    return {
        "cold_start_s": cold,
        "container_p50_ms": container,
        "serve_p50_ms": serve,
        "ratio": container / serve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    tag = import_package(PACKAGE)
    image = f"credit-scoring:{tag.split(':')[1]}"
    size = json.loads(engine_run(args.engine, "image", "inspect", image))[0]["Size"]
    scorer = Scorer(Package.load(PACKAGE))
    client_id = scorer.package.applications.stating(scorer.package.inputs.required)[0]
    request = post("/predict", {"features": scorer.application(client_id), "client_id": client_id})
    runs = [one_run(args.engine, image, tag, request, args.requests) for _ in range(args.runs)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(
        json.dumps(
            {
                "machine": machine(),
                "engine": args.engine,
                "image": image,
                "image_mb": size / 1e6,
                "runs": runs,
                "median": median,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
