"""The aggregate stage's engine (polars) against plain pandas on the same spec and data.

    python -m benchmarks.aggregate --data /tmp/full_raw [--repeats 3] [--params params.yaml]

Each run is a fresh process, so peak memory is per run: read the history tables from --data
and aggregate them with the spec in params.yaml, either with polars (lazy scans, what the stage
runs) or with the pandas reference (``pd.read_parquet``, then one groupby per step, as the
public kernels do). Reading is included, writing is not (it is the same for both). Target at
synthetic_full scale: polars under 90 s and 10 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import polars as pl
import yaml

from benchmarks.common import machine, medians, peak_rss_gib, repeat_in_subprocesses
from credit_scoring.features.aggregates import aggregate, load_specs, plan_groups, required_tables
from tests.support.reference_aggregates import aggregate_reference

ENGINES = ("polars", "pandas")


def one_run(engine: str, data: Path, params: Path) -> dict:
    cfg = yaml.safe_load(params.read_text(encoding="utf-8"))["aggregate"]
    groups = plan_groups(load_specs(params.parent / cfg["spec"]), enabled=cfg["groups"])
    paths = {name: data / f"{name}.parquet" for name in required_tables(groups)}
    start = time.perf_counter()
    if engine == "polars":
        rows, width = aggregate({n: pl.scan_parquet(p) for n, p in paths.items()}, groups).shape
    else:
        tables = {n: pd.read_parquet(p) for n, p in paths.items()}
        rows, width = aggregate_reference(tables, groups).shape
    return {
        "wall_s": time.perf_counter() - start,
        "peak_gib": peak_rss_gib(),
        "applicants": rows,
        "aggregates": width - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", action="store_true", help="a single run, as JSON (internal)")
    parser.add_argument("--engine", choices=ENGINES, default="polars")
    parser.add_argument("--data", type=Path, required=True, help="a folder of <table>.parquet")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.engine, args.data, args.params)))
        return
    result: dict = {"machine": machine(), "data": str(args.data), "runs": args.repeats}
    for engine in ENGINES:
        one = ["--engine", engine, "--data", str(args.data), "--params", str(args.params)]
        result[engine] = medians(repeat_in_subprocesses("benchmarks.aggregate", one, args.repeats))
    result["pandas_over_polars"] = {
        key: round(result["pandas"][key] / result["polars"][key], 2)
        for key in ("wall_s", "peak_gib")
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
