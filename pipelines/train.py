"""train: cross-validated LightGBM on the development applicants, calibrated, then served.

Writes the out-of-fold predictions, the served model, its calibration, and the validated
model's predictions for the hold-out applicants. With ``train.final_fit: development`` the
served model is the validated one, fitted on every development applicant, and the hold-out's
labels are never read. With ``all`` it is refitted on the development and hold-out applicants
with the same settings and rounds; the hold-out file then also holds the refitted model's
scores, which the threshold stage's refit check compares with the validated model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.metrics import log_loss, roc_auc_score

from credit_scoring.atomic import write_json, write_parquet, write_text
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.cores import Share, available_cores
from credit_scoring.engine.cluster import ClusterSpec, connect
from credit_scoring.errors import ConfigError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import (
    PROBABILITY,
    REFITTED,
    UNCALIBRATED,
    Trained,
    final_fit_on_all,
    model_text,
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
    refit = final_fit_on_all(cfg["final_fit"])
    if spec is None:
        cores = available_cores(cfg["threads"])
        share = Share.of(cores, model["n_folds"])
        log.info(
            "LightGBM on %d core(s): %d fit(s) at a time, %d thread(s) each",
            cores,
            share.jobs,
            share.threads,
        )
        ids, y, trained, held_ids, held = here(paths, schema, model, cores=cores, refit=refit)
    elif refit:
        raise ConfigError("train.final_fit=all runs on the local engine (engine=local) only")
    else:
        ids, y, trained, held_ids, held = on_cluster(spec, paths, schema, model)
    cv, calibration, booster = trained.cv, trained.calibration, trained.served

    oof = cv.oof_frame(ids, y)
    oof[UNCALIBRATED], oof[PROBABILITY] = oof[PROBABILITY], calibration.probability(cv.oof)
    write_parquet(oof, cfg["oof"])
    scores = {KEY: held_ids, UNCALIBRATED: held[0], PROBABILITY: calibration.probability(held[0])}
    if refit:
        scores[REFITTED] = calibration.probability(held[1])
    write_parquet(pd.DataFrame(scores), cfg["holdout"])
    write_text(model_text(booster), cfg["model"])
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


# The development applicants' keys and labels, what the protocol yields, the hold-out
# applicants' keys, and their uncalibrated scores: the validated model's (and the refitted one's).
Fitted = tuple[np.ndarray, np.ndarray, Trained, np.ndarray, tuple[np.ndarray, ...]]


def here(paths: Params, schema: FeatureSchema, model: Params, *, cores: int, refit: bool) -> Fitted:
    """The protocol in this process, on ``cores`` cores; the hold-out's labels are read only
    to ``refit`` on every applicant."""
    features = list(schema.features)
    frame = read_parquet(paths["train"])
    holdout = read_parquet(paths["holdout"], columns=[KEY, *features, *([TARGET] * refit)])
    x, y = frame[features].to_numpy(), frame[TARGET].to_numpy()
    x_held = holdout[features].to_numpy()
    trained = train_model(
        x,
        y,
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        cores=cores,
        holdout=(x_held, holdout[TARGET].to_numpy()) if refit else None,
    )
    held = tuple(
        booster.predict(x_held, num_threads=cores)
        for booster in (trained.booster, trained.refitted)
        if booster is not None
    )
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
        return ids, y, trained, held_ids, (predict_rows(client, trained.booster, x),)


if __name__ == "__main__":
    run(main)
