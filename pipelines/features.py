"""features: the application transform joined with the history aggregates, for train and test."""

from __future__ import annotations

from pathlib import Path

from credit_scoring.atomic import write_json, write_parquet
from credit_scoring.contract.tables import KEY, load_contract
from credit_scoring.features.feature_schema import build_schema
from credit_scoring.features.transform import feature_frame
from pipelines.common import Params, read_parquet, run


def main(params: Params) -> None:
    raw_dir, cfg = Path(params["data"]["raw_dir"]), params["features"]
    aggregates = read_parquet(Path(params["aggregate"]["out"]))
    schema = build_schema(
        load_contract()["application_train"], [c for c in aggregates.columns if c != KEY]
    )
    for split in ("train", "test"):
        applications = read_parquet(raw_dir / f"application_{split}.parquet")
        write_parquet(feature_frame(applications, aggregates, schema), cfg[split])
    write_json(schema.to_dict(), cfg["schema"])


if __name__ == "__main__":
    run(main)
