"""train: cross-validated LightGBM on the development applicants, calibrated, then served.

Writes the out-of-fold predictions, the model fitted on every development applicant, its
calibration, and its predictions for the hold-out applicants, whose labels it never reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.metrics import log_loss, roc_auc_score

from credit_scoring.atomic import write_json, write_parquet, write_text
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.engine.cluster import ClusterSpec, connect
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import (
    PROBABILITY,
    UNCALIBRATED,
    Trained,
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
    spec = ClusterSpec.from_params(params["engine"])
    if spec is None:
        ids, y, trained, held_ids, held = here(paths, schema, model, cfg["threads"])
    else:
        ids, y, trained, held_ids, held = on_cluster(spec, paths, schema, model)
    cv, calibration, booster = trained.cv, trained.calibration, trained.booster

    oof = cv.oof_frame(ids, y)
    oof[UNCALIBRATED], oof[PROBABILITY] = oof[PROBABILITY], calibration.probability(cv.oof)
    write_parquet(oof, cfg["oof"])
    write_parquet(
        pd.DataFrame(
            {KEY: held_ids, UNCALIBRATED: held, PROBABILITY: calibration.probability(held)}
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


Fitted = tuple[np.ndarray, np.ndarray, Trained, np.ndarray, np.ndarray]


def here(paths: Params, schema: FeatureSchema, model: Params, threads: int) -> Fitted:
    """The protocol in this process: the development applicants' keys, labels, what the
    protocol yields, and the hold-out applicants' keys and uncalibrated scores."""
    frame = read_parquet(paths["train"])
    holdout = read_parquet(paths["holdout"], columns=[KEY, *schema.features])  # no label
    x, y = frame[list(schema.features)].to_numpy(), frame[TARGET].to_numpy()
    trained = train_model(
        x,
        y,
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        threads=threads,
    )
    held = trained.booster.predict(holdout[list(schema.features)].to_numpy())
    return frame[KEY].to_numpy(), y, trained, holdout[KEY].to_numpy(), held


def on_cluster(spec: ClusterSpec, paths: Params, schema: FeatureSchema, model: Params) -> Fitted:
    """The same on the cluster: every fit data-parallel, the hold-out scored by the workers."""
    from credit_scoring.engine.train import (  # imports dask
        feature_matrix,
        predict_rows,
        train_on_cluster,
    )

    size = spec.partition_size
    with connect(spec) as client:
        train, holdout = require(paths["train"]), require(paths["holdout"])
        ids, y, trained = train_on_cluster(
            client, train, schema=schema, model=model, partition_size=size
        )
        x, held_ids, _ = feature_matrix(
            client, holdout, schema, partition_size=size, labelled=False
        )
        return ids, y, trained, held_ids, predict_rows(client, trained.booster, x)


if __name__ == "__main__":
    run(main)
