"""features: the application transform joined with the history aggregates, for train and test.

The training applicants are split here, before anything is fitted, into the development set
and the hold-out (``features.holdout_share``, stratified, seeded).
"""

from __future__ import annotations

from pathlib import Path

from credit_scoring.atomic import write_json, write_parquet
from credit_scoring.contract.tables import KEY, TARGET, load_contract
from credit_scoring.features.feature_schema import build_schema
from credit_scoring.features.transform import feature_frame
from credit_scoring.modelling.holdout import holdout_mask
from pipelines.common import Params, log, read_parquet, run


def main(params: Params) -> None:
    raw_dir, cfg = Path(params["data"]["raw_dir"]), params["features"]
    aggregates = read_parquet(Path(params["aggregate"]["out"]))
    schema = build_schema(
        load_contract()["application_train"],
        aggregates=[c for c in aggregates.columns if c != KEY],
        exclude=cfg["exclude"],
    )
    train = feature_frame(read_parquet(raw_dir / "application_train.parquet"), aggregates, schema)
    held = holdout_mask(train[TARGET], cfg["holdout_share"], cfg["holdout_seed"])
    write_parquet(train[~held].reset_index(drop=True), cfg["train"])
    write_parquet(train[held].reset_index(drop=True), cfg["holdout"])
    test = feature_frame(read_parquet(raw_dir / "application_test.parquet"), aggregates, schema)
    write_parquet(test, cfg["test"])
    write_json(schema.to_dict(), cfg["schema"])
    log.info("%d development and %d hold-out applicants", (~held).sum(), held.sum())


if __name__ == "__main__":
    run(main)
