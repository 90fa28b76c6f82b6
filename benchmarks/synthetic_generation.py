"""How long and how much memory generating synthetic_full takes (target: < 5 min, < 12 GiB).

    python -m benchmarks.synthetic_generation [--repeats 3] [--n-train 307511 --n-test 48744]

Each run is a fresh process: generate the eight tables (contract check included), then write
them as parquet. The baseline in the same run is reading those files back with pyarrow, so
the ratio says how many times the cost of simply loading the data the generator costs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import machine, medians, peak_rss_gib, repeat_in_subprocesses
from credit_scoring.atomic import write_tables
from credit_scoring.sources.synthetic import generate


def one_run(n_train: int, n_test: int) -> dict:
    start = time.perf_counter()
    tables = generate(n_train=n_train, n_test=n_test, seed=42)
    generated = time.perf_counter() - start
    rows = sum(len(t) for t in tables.values())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_tables(tables, Path(tmp) / "raw")
        written = time.perf_counter() - start
        del tables
        start = time.perf_counter()
        for path in sorted((Path(tmp) / "raw").glob("*.parquet")):
            pd.read_parquet(path)
        read = time.perf_counter() - start
    return {
        "generate_s": generated,
        "write_s": written,
        "read_back_s": read,
        "ratio_generate_to_read": generated / read,
        "rows_millions": rows / 1e6,
        "peak_gib": peak_rss_gib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", action="store_true", help="a single run, as JSON (internal)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=307_511)
    parser.add_argument("--n-test", type=int, default=48_744)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.n_train, args.n_test)))
        return
    runs = repeat_in_subprocesses(
        "benchmarks.synthetic_generation",
        ["--n-train", str(args.n_train), "--n-test", str(args.n_test)],
        args.repeats,
    )
    print(json.dumps({"machine": machine(), "runs": len(runs), "median": medians(runs)}, indent=2))


if __name__ == "__main__":
    main()
