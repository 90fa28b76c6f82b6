"""drift: Evidently's drift report of the current applicants against the training ones.

`python -m pipelines.drift` compares application_test with application_train (the DVC stage);
`--current batch.csv --out reports/monitoring/<name>` checks any batch of raw applications.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from dvclive import Live

from credit_scoring.drift import (
    Sample,
    choose_columns,
    compare,
    reproducible_html,
    score_histogram,
)
from credit_scoring.features import KEY, TARGET, FeatureSchema
from credit_scoring.io import write_json, write_text
from credit_scoring.schema import conform_table, load_contract
from credit_scoring.sources import SourceError
from pipelines.common import load_params, log, read_parquet, require, run


def read_batch(path: Path) -> pd.DataFrame:
    """A batch of raw applications held to the application_test contract (TARGET ignored)."""
    if path.suffix not in (".csv", ".parquet"):
        raise SourceError(f"{path}: expected a .csv or .parquet file")
    if not path.is_file():
        raise SourceError(f"{path} not found")
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    log.info("checking %s (%d rows) against the application_test contract", path, len(frame))
    return conform_table("application_test", frame.drop(columns=TARGET, errors="ignore"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.drift", description=__doc__)
    parser.add_argument("--current", type=Path, help="a CSV or parquet batch of applications")
    parser.add_argument("--out", type=Path, help="the folder for the batch's drift.html/.json")
    args = parser.parse_args()
    if (args.current is None) != (args.out is None):
        parser.error("--current and --out go together")

    params = load_params()
    cfg, raw_dir = params["drift"], Path(params["data"]["raw_dir"])
    if args.current is None:
        current = read_parquet(raw_dir / "application_test.parquet")
        html, out_json = Path(cfg["html"]), Path(cfg["json"])
    else:
        current = read_batch(args.current)
        html, out_json = args.out / Path(cfg["html"]).name, args.out / Path(cfg["json"]).name
    reference = read_parquet(raw_dir / "application_train.parquet")
    sample = Sample.draw(reference, current, size=cfg["sample"], seed=cfg["seed"])
    booster = lgb.Booster(model_file=require(params["train"]["model"]))
    decision = json.loads(require(params["cost"]["out"]).read_text())
    result = compare(
        sample,
        read_parquet(Path(params["aggregate"]["out"]), filters=[(KEY, "in", sample.ids)]),
        schema=FeatureSchema.from_json(require(params["features"]["schema"]).read_text()),
        booster=booster,
        columns=choose_columns(
            load_contract()["application_test"],
            dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True)),
            cfg["top_features"],
        ),
        drift_share=cfg["drift_share"],
        threshold=decision["threshold"],
    )
    summary = result.summary
    summary["prediction"]["training_oof_share_refused"] = (
        decision["tp"] + decision["fp"]
    ) / decision["applicants"]
    write_text(reproducible_html(result.snapshot.get_html_str(as_iframe=False)), html)
    write_json(summary, out_json)
    dataset = summary["dataset"]
    log.info(
        "%d of %d columns drifted; %.1f%% of current applicants refused (reference %.1f%%)",
        dataset["drifted_columns"],
        dataset["columns"],
        100 * summary["prediction"]["current_share_refused"],
        100 * summary["prediction"]["reference_share_refused"],
    )
    if args.current is not None:
        return  # a monitoring batch is not an experiment: no DVClive metrics
    with Live(cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("share_drifted_columns", dataset["share_drifted_columns"], plot=False)
        live.log_metric("score_drift", summary["prediction"]["score"], plot=False)
        live.log_plot(
            "score_distribution",
            score_histogram(result.reference_scores, result.current_scores, cfg["score_bins"]),
            x="probability",
            y=["reference", "current"],
            template="linear",
            title="Share of applicants by predicted probability of default",
        )


if __name__ == "__main__":
    run(main)
