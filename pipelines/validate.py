"""validate: the served model reviewed in credit-risk terms, as a model-risk team reads it.

On the hold-out, with the out-of-fold figures beside it: Gini and KS with bootstrap intervals,
rank ordering by decile and by risk grade, the Jeffreys test by grade, the score's and the
strongest features' stability against application_test, fair lending by group (fairlearn) and
the age rule. Writes ``reports/validation.html`` and its JSON; fails only on the sections that
``validate.fail_on`` names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightgbm as lgb
from dvclive import Live

from credit_scoring.atomic import write_json, write_text
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.cores import available_cores
from credit_scoring.errors import InputError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration, predict_contributions, predict_pd
from credit_scoring.modelling.cross_validation import (
    FINAL_FIT_STATEMENTS,
    PROBABILITY,
    final_fit_on_all,
    top_importance,
)
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.validation.report import FAIL, FLAGGED, render_html, verdicts
from credit_scoring.validation.review import (
    ReviewSettings,
    approval_plot,
    decile_plot,
    headline,
    review,
)
from pipelines.common import Params, log, read_parquet, require, run


def main(params: Params) -> None:
    cfg, train, paths = params["validate"], params["train"], params["features"]
    final_fit_on_all(train["final_fit"])  # a bad choice stops before any read
    schema = FeatureSchema.from_json(require(paths["schema"]).read_text())
    model_text = require(train["model"]).read_text()
    booster = lgb.Booster(model_str=model_text)
    calibration = Calibration.from_json(require(train["calibration"]).read_text())
    decision = ThresholdDecision.from_json(require(params["cost"]["out"]).read_text())
    features = list(schema.features)
    holdout = read_parquet(train["holdout"], columns=[KEY, PROBABILITY]).merge(
        read_parquet(paths["holdout"]), on=KEY, validate="1:1"
    )
    raw = Path(params["data"]["raw_dir"]) / "application_train.parquet"
    wanted = [KEY, *cfg["attributes"], "DAYS_BIRTH"]
    attributes = holdout[[KEY]].merge(  # as stated, whether or not the model reads them
        read_parquet(raw, columns=wanted, filters=[(KEY, "in", holdout[KEY].tolist())]),
        on=KEY,
        how="left",
        validate="1:1",
    )
    test = read_parquet(paths["test"])
    cores = available_cores(train["threads"])
    test[PROBABILITY] = predict_pd(booster, calibration, test[features].to_numpy(), cores)
    report = review(
        oof=read_parquet(train["oof"], columns=[KEY, TARGET, PROBABILITY]),
        holdout=holdout,
        attributes=attributes,
        test=test,
        contributions=predict_contributions(
            booster, calibration, holdout[features].to_numpy(), cores
        ),
        features=features,
        categorical=list(schema.categorical),
        strongest=[row["feature"] for row in top_importance(booster, n=len(features))],
        decision=decision,
        excluded=schema.audited,
        summary={
            "model_version": "model.txt " + hashlib.sha256(model_text.encode()).hexdigest()[:16],
            "fitting": FINAL_FIT_STATEMENTS[train["final_fit"]],
            "threshold": decision.threshold,
            "cutoff_score": Scorecard.from_dict(params["scorecard"]).points(decision.threshold),
        },
        settings=ReviewSettings.from_params(cfg),
    )
    write_json(report, cfg["json"])
    write_text(render_html(report), cfg["html"])
    figures = headline(report)
    with Live(dir=cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        for name, value in figures.items():
            live.log_metric(name, value, plot=False)
        live.log_plot(
            "deciles",
            decile_plot(report),
            x="decile",
            y=["default_rate", "mean_pd"],
            template="linear",
            title="Hold-out default rate and mean PD by score decile",
        )
        live.log_plot(
            "approval_rates",
            approval_plot(report),
            x="approval_rate",
            y="group",
            template="bar_horizontal",
            title="Hold-out approval rate by group",
        )
    found = verdicts(report)
    log.info("validation: %s", ", ".join(f"{k} {v}" for k, v in found.items()))
    failed = [k for k in cfg["fail_on"] if found.get(k) in (FAIL, FLAGGED)]
    if failed:
        raise InputError(f"validation failed on {failed} (validate.fail_on); see {cfg['html']}")


if __name__ == "__main__":
    run(main)
