"""drift: Evidently's drift report of the current applicants (application_test) against training.

The reference is the hold-out: training applicants the served model was not fitted on, so both
populations are scored out of sample. A batch after deployment is checked by
``python -m credit_scoring.monitoring``, on the same library function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from dvclive import Live

from credit_scoring.contract.tables import KEY
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.monitoring.drift import assess, score_histogram, write_report
from pipelines.common import Params, log, read_parquet, require, run


def main(params: Params) -> None:
    cfg, raw_dir, train = params["drift"], Path(params["data"]["raw_dir"]), params["train"]
    holdout = read_parquet(params["features"]["holdout"], columns=[KEY])[KEY]
    aggregates = require(params["aggregate"]["out"])

    def history(ids: Sequence[int]) -> pd.DataFrame:
        return pd.read_parquet(aggregates, filters=[(KEY, "in", list(ids))])

    result = assess(
        read_parquet(raw_dir / "application_train.parquet", filters=[(KEY, "in", list(holdout))]),
        read_parquet(raw_dir / "application_test.parquet"),
        history=history,
        known=None,  # every applicant of the data set: its history is all there is
        schema=FeatureSchema.from_json(require(params["features"]["schema"]).read_text()),
        booster=lgb.Booster(model_file=require(train["model"])),
        calibration=Calibration.from_json(require(train["calibration"]).read_text()),
        decision=ThresholdDecision.from_json(require(params["cost"]["out"]).read_text()),
        top_features=cfg["top_features"],
        sample=cfg["sample"],
        seed=cfg["seed"],
        drift_share=cfg["drift_share"],
    )
    write_report(result, Path(cfg["html"]), Path(cfg["json"]))
    summary, prediction = result.summary, result.summary["prediction"]
    log.info(
        "%d of %d columns drifted; %.1f%% of current applicants refused (reference %.1f%%)",
        summary["dataset"]["drifted_columns"],
        summary["dataset"]["columns"],
        100 * prediction["current_share_refused"],
        100 * prediction["reference_share_refused"],
    )
    with Live(cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric(
            "share_drifted_columns", summary["dataset"]["share_drifted_columns"], plot=False
        )
        live.log_metric("score_drift", prediction["score"], plot=False)
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
