"""aggregate: the six history tables into one row of aggregates per applicant, in data/interim/."""

from __future__ import annotations

from pathlib import Path

from credit_scoring.atomic import atomic_path
from credit_scoring.engine.cluster import ClusterSpec, connect
from credit_scoring.features.aggregates import (
    aggregate,
    load_specs,
    plan_groups,
    required_tables,
    scan_tables,
)
from pipelines.common import Params, log, run


def main(params: Params) -> None:
    cfg, raw_dir = params["aggregate"], Path(params["data"]["raw_dir"])
    groups = plan_groups(load_specs(Path(cfg["spec"])), enabled=cfg["groups"])
    spec = ClusterSpec.from_params(params["engine"])
    if spec is None or not groups:  # no history: nothing for a cluster to do
        frame = aggregate(scan_tables(raw_dir, required_tables(groups)), groups)
        with atomic_path(cfg["out"]) as staged:
            frame.write_parquet(staged, compression="zstd")
        rows = frame.height
    else:
        from credit_scoring.engine.aggregate import aggregate_partitioned  # imports dask
        from credit_scoring.engine.frames import write_parquet

        with connect(spec) as client:
            frame = aggregate_partitioned(raw_dir, groups, partition_size=spec.partition_size)
            rows = write_parquet(frame, client, cfg["out"])
    log.info(
        "%s: %d applicants x %d aggregates", cfg["out"], rows, sum(len(g.columns) for g in groups)
    )


if __name__ == "__main__":
    run(main)
