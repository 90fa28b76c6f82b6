"""train: cross-validated LightGBM on the development applicants, calibrated, then served.

Writes the out-of-fold predictions, the model fitted on every development applicant, its
calibration, and its predictions for the hold-out applicants, whose labels it never reads.
"""

from __future__ import annotations

import pandas as pd
from dvclive import Live
from sklearn.metrics import log_loss, roc_auc_score

from credit_scoring.atomic import write_json, write_parquet, write_text
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import (
    PROBABILITY,
    UNCALIBRATED,
    top_importance,
    train_model,
)
from credit_scoring.modelling.curves import (
    learning_curve_table,
    precision_recall_table,
    roc_table,
)
from pipelines.common import Params, log, read_parquet, require, run


def main(params: Params) -> None:
    model, cfg, paths = params["model"], params["train"], params["features"]
    schema = FeatureSchema.from_json(require(paths["schema"]).read_text())
    frame = read_parquet(paths["train"])
    holdout = read_parquet(paths["holdout"], columns=[KEY, *schema.features])  # no label
    x, y = frame[list(schema.features)].to_numpy(), frame[TARGET].to_numpy()
    trained = train_model(
        x,
        y,
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        threads=cfg["threads"],
    )
    cv, calibration, booster = trained.cv, trained.calibration, trained.booster
    held = booster.predict(holdout[list(schema.features)].to_numpy())

    oof = cv.oof_frame(frame[KEY].to_numpy(), y)
    oof[UNCALIBRATED], oof[PROBABILITY] = oof[PROBABILITY], calibration.probability(cv.oof)
    write_parquet(oof, cfg["oof"])
    write_parquet(
        pd.DataFrame(
            {KEY: holdout[KEY], UNCALIBRATED: held, PROBABILITY: calibration.probability(held)}
        ),
        cfg["holdout"],
    )
    write_text(booster.model_to_string(), cfg["model"])
    write_json(calibration.to_dict(), cfg["calibration"])
    write_json(cv.folds_report(), cfg["folds"])
    log.info("cross-validation took %.1f s", cv.seconds)  # a time is no artifact: it never repeats
    with Live(cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("oof_auc", roc_auc_score(y, cv.oof), plot=False)
        live.log_metric("oof_logloss", log_loss(y, cv.oof), plot=False)
        live.log_plot("roc", roc_table(y, cv.oof), x="fpr", y="tpr", title="OOF ROC")
        live.log_plot(
            "precision_recall",
            precision_recall_table(y, cv.oof),
            x="recall",
            y="precision",
            title="OOF precision-recall",
        )
        live.log_plot(
            "learning_curve",
            learning_curve_table(cv.folds),
            x="iteration",
            y=["valid_auc_mean", "valid_auc_min", "valid_auc_max"],
            title="Early-stopping AUC by round, over the folds' inner splits",
        )
        live.log_plot(
            "importance",
            top_importance(booster),
            x="gain",
            y="feature",
            template="bar_horizontal_sorted",
            title="Top 30 features by gain",
        )


if __name__ == "__main__":
    run(main)
