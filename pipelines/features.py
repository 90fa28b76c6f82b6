"""features: the application transform joined with the history aggregates, for train and test."""

from __future__ import annotations

from pathlib import Path

from credit_scoring.features import KEY, build_schema, feature_frame
from credit_scoring.io import write_json, write_parquet
from credit_scoring.schema import load_contract
from pipelines.common import load_params, read_parquet, run


def main() -> None:
    params = load_params()
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
