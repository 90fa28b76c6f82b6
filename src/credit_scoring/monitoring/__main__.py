"""Check a batch of applicants after deployment against the training applicants.

``python -m credit_scoring.monitoring --current batch.csv --out reports/monitoring/2026-11``
writes ``drift.html`` and ``drift.json`` into ``--out``, computed as the drift stage computes
them; the reference data, model and settings are those ``params.yaml`` names.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import yaml

from credit_scoring.errors import InputError, exit_on_input_error
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.threshold import ThresholdDecision
from credit_scoring.monitoring.batch import read_batch
from credit_scoring.monitoring.drift import assess, write_report

log = logging.getLogger("credit_scoring.monitoring")


def existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found; `make repro` or `dvc pull` brings it")
    return path


def check(current: Path, out: Path, params: Path) -> None:
    cfg = yaml.safe_load(existing(params).read_text())
    drift, raw_dir = cfg["drift"], Path(cfg["data"]["raw_dir"])
    result = assess(
        pd.read_parquet(existing(raw_dir / "application_train.parquet")),
        read_batch(current),
        aggregates=existing(cfg["aggregate"]["out"]),
        schema=FeatureSchema.from_json(existing(cfg["features"]["schema"]).read_text()),
        booster=lgb.Booster(model_file=existing(cfg["train"]["model"])),
        decision=ThresholdDecision.from_json(existing(cfg["cost"]["out"]).read_text()),
        top_features=drift["top_features"],
        sample=drift["sample"],
        seed=drift["seed"],
        drift_share=drift["drift_share"],
    )
    write_report(result, out / Path(drift["html"]).name, out / Path(drift["json"]).name)
    dataset = result.summary["dataset"]
    log.info(
        "%d of %d columns drifted; report in %s",
        *map(dataset.get, ("drifted_columns", "columns")),
        out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m credit_scoring.monitoring", description=__doc__
    )
    parser.add_argument("--current", type=Path, required=True, help="a CSV or parquet batch")
    parser.add_argument("--out", type=Path, required=True, help="the report's folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    exit_on_input_error(lambda: check(args.current, args.out, args.params), log)


if __name__ == "__main__":
    main()
