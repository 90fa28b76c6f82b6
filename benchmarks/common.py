"""Run a measurement in fresh processes, so peak memory is per run, and report medians."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def peak_rss_gib() -> float:
    """This process's peak resident memory since it started its program (``VmHWM``, in KiB).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``exec`` from the process that
    forked, so every run a benchmark started after preparing 8 GiB of data reported 8 GiB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("/proc/self/status has no VmHWM (not Linux?)")


def machine() -> str:
    cores = len(__import__("os").sched_getaffinity(0))
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{platform.processor() or platform.machine()}, {cores} cores, {int(mem) / 2**20:.0f} GiB"
    )


def repeat_in_subprocesses(module: str, args: Sequence[str], repeats: int) -> list[dict]:
    """Run ``python -m module --one *args`` ``repeats`` times; each prints one JSON line."""
    runs = []
    for i in range(repeats):
        done = subprocess.run(
            [sys.executable, "-m", module, "--one", *args],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"run {i + 1}/{repeats}: {runs[-1]}", file=sys.stderr)
    return runs


def medians(runs: list[dict]) -> dict:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def data_overrides(description: str | None) -> tuple[argparse.Namespace, list[str]]:
    """The quality benchmarks' command line: ``--local DIR`` (genuine CSVs, else the synthetic
    default) and more Hydra overrides; returns the arguments and every override."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--local", type=Path, help="genuine Kaggle CSVs (else synthetic)")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. model=fast")
    args = parser.parse_args()
    data = ["data=local", f"data.path={args.local.resolve()}"] if args.local else []
    return args, [*data, *args.overrides]
