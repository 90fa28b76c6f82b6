"""features: the application transform joined with the history aggregates, for train and test.

The training applicants are split here, before anything is fitted, into the development set
and the hold-out (``features.holdout_share``, stratified, seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from credit_scoring.atomic import write_json, write_parquet
from credit_scoring.contract.tables import KEY, TARGET, load_contract
from credit_scoring.engine.cluster import ClusterSpec, connect
from credit_scoring.features.feature_schema import FeatureSchema, build_schema
from credit_scoring.features.frames import feature_frame
from credit_scoring.modelling.holdout import holdout_mask
from pipelines.common import Params, log, read_parquet, require, run


def main(params: Params) -> None:
    raw_dir, cfg = Path(params["data"]["raw_dir"]), params["features"]
    aggregates = require(params["aggregate"]["out"])
    train, test = (require(raw_dir / f"application_{name}.parquet") for name in ("train", "test"))
    schema = build_schema(
        load_contract()["application_train"],
        aggregates=[c for c in pq.read_schema(aggregates).names if c != KEY],
        exclude=cfg["exclude"],
    )
    labels = read_parquet(train, columns=[KEY, TARGET])
    held = holdout_mask(labels[TARGET], cfg["holdout_share"], cfg["holdout_seed"])
    spec = ClusterSpec.from_params(params["engine"])
    if spec is None:
        history = read_parquet(aggregates)
        frame = feature_frame(read_parquet(train), history, schema)
        rows = cfg["row_group_size"]
        write_parquet(frame[~held].reset_index(drop=True), cfg["train"], rows)
        write_parquet(frame[held].reset_index(drop=True), cfg["holdout"], rows)
        write_parquet(feature_frame(read_parquet(test), history, schema), cfg["test"], rows)
    else:
        held_ids = labels[KEY].to_numpy()[held]
        on_cluster(spec, cfg, schema, aggregates=aggregates, train=train, test=test, held=held_ids)
    write_json(schema.to_dict(), cfg["schema"])
    log.info("%d development and %d hold-out applicants", (~held).sum(), held.sum())


def on_cluster(
    spec: ClusterSpec,
    cfg: Params,
    schema: FeatureSchema,
    *,
    aggregates: Path,
    train: Path,
    test: Path,
    held: np.ndarray,
) -> None:
    """The same three files, from partitions of applicants transformed on the cluster;
    ``held`` are the hold-out applicants."""
    from credit_scoring.engine.features import feature_partitions, select_applicants  # imports dask
    from credit_scoring.engine.frames import write_parquet as write_partitions

    with connect(spec) as client:
        size = spec.partition_size
        frame = client.persist(feature_partitions(train, aggregates, schema, partition_size=size))
        write_partitions(select_applicants(frame, held, keep=False), client, cfg["train"])
        write_partitions(select_applicants(frame, held, keep=True), client, cfg["holdout"])
        frame = feature_partitions(test, aggregates, schema, partition_size=size)
        write_partitions(frame, client, cfg["test"])


if __name__ == "__main__":
    run(main)
