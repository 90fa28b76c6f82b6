"""Training that shares the machine: the ways to spend the cores, alone and beside a busy process.

    python -m benchmarks.training_threads --work /tmp/threads [--runs 3]
    python -m benchmarks.training_threads --work /tmp/threads --experiments

The first run prepares ``--work`` (download, aggregate and features on the synthetic default).
Each measurement is then a fresh process that runs the training protocol (the folds' early
stopping, their refits, the final fit, the hold-out scored: what the train stage computes, without
its reads and writes) one way:

* ``threads``: one fit after another, each with every core's threads (the train stage before
  the thread rule, ``train.threads: 2``);
* ``passive``: the same with ``OMP_WAIT_POLICY=passive`` (OpenMP threads sleep at a barrier
  rather than spin);
* ``one_thread``: one fit after another on one thread;
* ``processes``: the library's rule (:mod:`credit_scoring.cores`): as many fits at once as
  cores, each in a process of its own with its share of them.

Each runs alone and beside one busy neighbour (a process that spins one core), ``--runs``
times; the report gives medians and each way's ratio to ``threads`` alone, the baseline of the
same run. The train stage itself (``python -m pipelines.train``) is timed the same two ways.

``--experiments`` instead times two experiments (``dvc exp run`` with two model seeds) one
after the other, then two more queued and run with ``dvc exp run --run-all -j 2``, in a clone
of this repository (its pipeline reproduced first, not timed). Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.common import machine
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.cores import available_cores
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import InMemory, booster_params, train_with
from tests.support.stages import ROOT, run_stage, write_params

WAYS = ("threads", "passive", "one_thread", "processes")
TIMEOUT = 300  # seconds: a run past it is reported as this figure, a lower bound


class OneAfterAnother(InMemory):
    """The protocol as it ran before the thread rule: every fit in this process, in turn."""

    def stop_early_each(self, splits, *, max_rounds, patience):
        return [self.stop_early(f, s, max_rounds=max_rounds, patience=patience) for f, s in splits]

    def fit_each(self, rows, rounds):
        return [self.fit(some, rounds) for some in rows]


def protocol(work: Path, way: str) -> float:
    """Seconds of the training protocol, one ``way``, in this process."""
    params = yaml.safe_load((work / "params.yaml").read_text())
    paths, model = params["features"], params["model"]
    schema = FeatureSchema.from_json((work / paths["schema"]).read_text())
    features = list(schema.features)
    frame = pd.read_parquet(work / paths["train"])
    held = pd.read_parquet(work / paths["holdout"], columns=[KEY, *features])
    x, y = frame[features].to_numpy(), frame[TARGET].to_numpy()
    cores = available_cores()
    threads = 1 if way == "one_thread" else cores
    kind = InMemory if way == "processes" else OneAfterAnother
    learner = kind(
        x, y, schema.features, schema.categorical_indices, booster_params(model, features, threads),
        cores if way == "processes" else threads,
    )  # fmt: skip
    start = time.perf_counter()
    trained = train_with(learner, y, model)
    trained.booster.predict(held[features].to_numpy(), num_threads=threads)
    return time.perf_counter() - start


@contextlib.contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """A process that keeps one core busy for the duration (none when not ``busy``)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)  # scheduled and spinning before the measurement starts
        yield
    finally:
        spinner.kill()
        spinner.wait()


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    try:
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return float(TIMEOUT)
    return time.perf_counter() - start


def measure(work: Path, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = {
        way: (
            [
                sys.executable,
                "-m",
                "benchmarks.training_threads",
                "--work",
                str(work),
                "--one",
                way,
            ],
            {**env, "OMP_WAIT_POLICY": "passive"} if way == "passive" else env,
        )
        for way in WAYS
    }
    commands["stage"] = ([sys.executable, "-m", "pipelines.train"], env)
    seconds: dict[str, list[float]] = {}
    for run in range(runs):
        for name, (command, variables) in commands.items():
            for busy in (False, True):
                with neighbour(busy):
                    took = timed(command, work, variables)
                seconds.setdefault(f"{name}_{'busy' if busy else 'alone'}", []).append(took)
                print(f"run {run + 1}/{runs} {name} busy={busy}: {took:.1f} s", file=sys.stderr)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    base = median["threads_alone"]
    return {
        "machine": machine(),
        "runs": runs,
        "seconds": {k: [round(s, 1) for s in v] for k, v in seconds.items()},
        "median_s": {k: round(v, 1) for k, v in median.items()},
        "ratio_to_threads_alone": {k: round(v / base, 2) for k, v in median.items()},
        "busy_over_alone": {
            name: round(median[f"{name}_busy"] / median[f"{name}_alone"], 2)
            for name in (*WAYS, "stage")
        },
    }


def experiments(seeds: tuple[int, int, int, int] = (1, 2, 3, 4)) -> dict:
    """Two experiments one after the other, then two queued and run two at a time."""
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)

        def dvc(*args: str) -> None:
            subprocess.run(["dvc", *args], cwd=clone, check=True, capture_output=True)

        dvc("repro")
        start = time.perf_counter()
        for seed in seeds[:2]:
            dvc("exp", "run", "-S", f"model.seed={seed}")
        serial = time.perf_counter() - start
        for seed in seeds[2:]:
            dvc("exp", "run", "--queue", "-S", f"model.seed={seed}")
        start = time.perf_counter()
        dvc("exp", "run", "--run-all", "-j", "2")
        queued = time.perf_counter() - start
    return {
        "machine": machine(),
        "one_after_another_s": round(serial, 1),
        "queued_j2_s": round(queued, 1),
        "ratio": round(queued / serial, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="the prepared stage folder (not --experiments)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--experiments", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"seconds": protocol(args.work, args.one)}))
        return
    if args.experiments:
        print(json.dumps(experiments(), indent=2))
        return
    if args.work is None:
        parser.error("--work is required")
    if not (args.work / "params.yaml").exists():
        write_params(args.work)
        for stage in ("download", "aggregate", "features"):
            run_stage(stage, args.work)
    print(json.dumps(measure(args.work, args.runs), indent=2))


if __name__ == "__main__":
    main()
