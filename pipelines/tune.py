"""tune: a seeded search over the LightGBM settings on the development applicants only.

Its own pipeline (``tuning/dvc.yaml``, ``make tune``), outside ``dvc repro``'s default one: it
reads the development features and their schema, never the hold-out, and writes the best
settings as ``conf/model/tuned.yaml`` with the study's report beside them.
"""

from __future__ import annotations

from pathlib import Path

from dvclive import Live

from credit_scoring.atomic import write_json, write_text
from credit_scoring.contract.tables import TARGET
from credit_scoring.cores import available_cores
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.tuning.report import render_html
from credit_scoring.tuning.search import (
    SearchSpace,
    search,
    study_name,
    summary,
    tuned_config,
)
from pipelines.common import Params, read_parquet, require, run


def main(params: Params) -> None:
    cfg, model, paths = params["tune"], params["model"], params["features"]
    space = SearchSpace.from_params(cfg["space"], model["lightgbm"])
    schema = FeatureSchema.from_json(require(paths["schema"]).read_text())
    features = list(schema.features)
    frame = read_parquet(paths["train"], columns=[*features, TARGET])
    storage = Path(cfg["storage"])
    storage.parent.mkdir(parents=True, exist_ok=True)
    study = search(
        frame[features].to_numpy(),
        frame[TARGET].to_numpy(),
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        space=space,
        trials=cfg["trials"],
        seed=cfg["seed"],
        storage=f"sqlite:///{storage}",
        name=study_name(space, model, require(paths["train"]), cfg["seed"]),
        cores=available_cores(params["train"]["threads"]),
    )
    report = summary(study, model, cfg["seed"])
    write_text(tuned_config(study, space), cfg["out"])
    write_json(report, cfg["json"])
    write_text(render_html(report), cfg["html"])
    with Live(cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("best_cv_auc", report["best"]["auc"], plot=False)
        if report["own"]:
            live.log_metric("own_cv_auc", report["own"]["auc"], plot=False)
        live.log_metric("trials", report["trials"], plot=False)
        live.log_plot(
            "history",
            [{k: row[k] for k in ("trial", "auc", "best_auc")} for row in report["history"]],
            x="trial",
            y=["auc", "best_auc"],
            template="linear",
            title="Out-of-fold AUC by trial, and the best so far",
        )
        if report["importances"]:  # none under three trials
            live.log_plot(
                "importance",
                [{"parameter": k, "importance": v} for k, v in report["importances"].items()],
                x="importance",
                y="parameter",
                template="bar_horizontal_sorted",
                title="Parameter importances (fANOVA)",
            )


if __name__ == "__main__":
    run(main)
