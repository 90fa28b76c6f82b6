"""aggregate: the six history tables into one row of aggregates per applicant, in data/interim/."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from credit_scoring.aggregate import aggregate, load_specs, plan_groups, required_tables
from credit_scoring.io import atomic_path
from credit_scoring.schema import SchemaError
from pipelines.common import load_params, run

log = logging.getLogger("pipelines")


def scan_tables(raw_dir: Path, names: list[str]) -> dict[str, pl.LazyFrame]:
    """Lazy scans of the raw tables, so polars reads only the columns the plan uses."""
    paths = {name: raw_dir / f"{name}.parquet" for name in names}
    for name, path in paths.items():
        if not path.is_file():
            raise SchemaError(name, None, f"{path} not found; run the download stage first")
    return {name: pl.scan_parquet(path) for name, path in paths.items()}


def main() -> None:
    params = load_params()
    cfg = params["aggregate"]
    groups = plan_groups(load_specs(Path(cfg["spec"])), enabled=cfg["groups"])
    tables = scan_tables(Path(params["data"]["raw_dir"]), required_tables(groups))
    frame = aggregate(tables, groups)
    with atomic_path(cfg["out"]) as staged:
        frame.write_parquet(staged, compression="zstd")
    log.info("%s: %d applicants x %d aggregates", cfg["out"], frame.height, frame.width - 1)


if __name__ == "__main__":
    run(main)
