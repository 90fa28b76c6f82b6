"""aggregate: the six history tables into one row of aggregates per applicant, in data/interim/."""

from __future__ import annotations

from pathlib import Path

from credit_scoring.atomic import atomic_path
from credit_scoring.features.aggregates import (
    aggregate,
    load_specs,
    plan_groups,
    required_tables,
    scan_tables,
)
from pipelines.common import Params, log, run


def main(params: Params) -> None:
    cfg = params["aggregate"]
    groups = plan_groups(load_specs(Path(cfg["spec"])), enabled=cfg["groups"])
    frame = aggregate(scan_tables(Path(params["data"]["raw_dir"]), required_tables(groups)), groups)
    with atomic_path(cfg["out"]) as staged:
        frame.write_parquet(staged, compression="zstd")
    log.info("%s: %d applicants x %d aggregates", cfg["out"], frame.height, frame.width - 1)


if __name__ == "__main__":
    run(main)
