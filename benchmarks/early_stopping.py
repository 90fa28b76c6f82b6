"""The protocol before and after inner early stopping, on the same data and the same hold-out.

    python -m benchmarks.early_stopping                    # the synthetic default
    python -m benchmarks.early_stopping --local ../shared/data/home-credit-sample

The features come from a scratch run of download → aggregate → features (the development
applicants and the hold-out the features stage sets aside). Both protocols then use the same
LightGBM parameters, seed and stratified folds (the ``model`` group), and the same costs:

* **before** (the old protocol, kept here as the measured baseline): each fold stops early on
  the very fold it then scores, and its predictions at that best iteration are the out-of-fold
  scores; the served model is fitted on every development applicant for the folds' mean best
  iteration; no calibration; the threshold is chosen on the raw out-of-fold scores.
* **after** (the library's, as the train and threshold stages run it): ``cross_validate``
  (early stopping on an inner split of each fold's training part, one number of rounds),
  ``fit_final``, Platt calibration fitted on the out-of-fold scores, the threshold chosen on the
  calibrated ones, and the hold-out scored with ``predict_pd``.

Optimism is the out-of-fold AUC minus the hold-out AUC. The out-of-fold AUC pools every fold's
scores; ``fold_auc_mean`` is the mean of the folds' own AUCs, which a difference in scale
between folds does not touch. Each figure comes from one run; runs are deterministic. Prints
JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from benchmarks.common import data_overrides
from credit_scoring.contract.tables import TARGET
from credit_scoring.cores import available_cores
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import calibration_report, predict_pd
from credit_scoring.modelling.cross_validation import (
    fit_final,
    lightgbm_params,
    monotone_params,
    train_model,
)
from credit_scoring.modelling.decision import APPROVE_ALL
from credit_scoring.modelling.threshold import choose_threshold, decision_cost
from tests.support.stages import run_stage, write_params


def rounded(value: Any) -> Any:
    """Floats to four significant digits (a small p-value stays readable), in any nesting."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(f"{value:.4g}")
    return value


Frames = tuple[dict, FeatureSchema, pd.DataFrame, pd.DataFrame]


def features(workdir: Path, overrides: list[str]) -> Frames:
    """The params, feature schema, development and hold-out frames of a scratch run."""
    params = write_params(workdir, overrides)
    for stage in ("download", "aggregate", "features"):
        run_stage(stage, workdir)
    paths = {k: workdir / v for k, v in params["features"].items() if isinstance(v, str)}
    schema = FeatureSchema.from_json(paths["schema"].read_text())
    return params, schema, pd.read_parquet(paths["train"]), pd.read_parquet(paths["holdout"])


def before(
    x: np.ndarray, y: np.ndarray, *, common: dict, model: dict
) -> tuple[np.ndarray, lgb.Booster, list[int], list[float]]:
    """The old protocol: each fold stops early on the fold it scores; mean best iteration."""
    lgb_params = lightgbm_params(common["params"], common["seed"], common["cores"])

    def dataset(rows: np.ndarray) -> lgb.Dataset:
        return lgb.Dataset(
            x[rows], label=y[rows], feature_name=list(common["features"]),
            categorical_feature=list(common["categorical"]), free_raw_data=False,
        )  # fmt: skip

    oof, best, aucs = np.full(len(y), np.nan), [], []
    splitter = StratifiedKFold(n_splits=model["n_folds"], shuffle=True, random_state=model["seed"])
    for fit, held in splitter.split(x, y):
        booster = lgb.train(
            lgb_params,
            dataset(fit),
            num_boost_round=model["max_rounds"],
            valid_sets=[dataset(held)],
            callbacks=[
                lgb.early_stopping(
                    model["early_stopping_rounds"], first_metric_only=True, verbose=False
                )
            ],
        )
        oof[held] = booster.predict(x[held], num_iteration=booster.best_iteration)
        best.append(booster.best_iteration)
        aucs.append(roc_auc_score(y[held], oof[held]))
    served = fit_final(x, y, rounds=round(float(np.mean(best))), **common)
    return oof, served, best, aucs


def figures(
    y: np.ndarray, oof: np.ndarray, y_held: np.ndarray, held: np.ndarray, costs: dict
) -> dict:
    """AUC, optimism, threshold (chosen on ``oof``), costs and calibration, OOF and hold-out."""
    decision = choose_threshold(y, oof, **costs, grades=10)  # grades: not reported
    oof_auc, held_auc = roc_auc_score(y, oof), roc_auc_score(y_held, held)
    return {
        "oof_auc": oof_auc,
        "holdout_auc": held_auc,
        "optimism": oof_auc - held_auc,
        "threshold": decision.threshold,
        "oof_cost_per_applicant": decision.chosen.cost_per_applicant,
        "holdout_cost_per_applicant": decision_cost(
            y_held, held, decision.threshold, **costs
        ).cost_per_applicant,
        "calibration": {
            "oof": calibration_report(y, oof),
            "holdout": calibration_report(y_held, held),
        },
    }


def main() -> None:
    args, overrides = data_overrides(__doc__.split("\n")[0])
    with tempfile.TemporaryDirectory() as tmp:
        params, schema, dev, hold = features(Path(tmp), overrides)
    model, cols = params["model"], list(schema.features)
    x, y = dev[cols].to_numpy(), dev[TARGET].to_numpy()
    x_held, y_held = hold[cols].to_numpy(), hold[TARGET].to_numpy()
    costs = {"cost_fn": params["cost"]["fn"], "cost_fp": params["cost"]["fp"]}
    common = {
        "features": schema.features,
        "categorical": schema.categorical_indices,
        "params": {**model["lightgbm"], **monotone_params(schema.features, model["monotone"])},
        "seed": model["seed"],
        "cores": available_cores(params["train"]["threads"]),
    }

    oof, served, best, aucs = before(x, y, common=common, model=model)
    old = {
        "best_iterations": best,
        "fold_auc_mean": float(np.mean(aucs)),
        "rounds": round(float(np.mean(best))),
        **figures(y, oof, y_held, served.predict(x_held), costs),
    }

    trained = train_model(
        x,
        y,
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        cores=common["cores"],
    )
    cv, calibration, served = trained.cv, trained.calibration, trained.booster
    calibrated_oof = calibration.probability(cv.oof)
    new = {
        "best_iterations": [f.best_iteration for f in cv.folds],
        "fold_auc_mean": float(np.mean([f.auc for f in cv.folds])),
        "rounds": cv.rounds,
        "calibration_slope": calibration.slope,
        "calibration_intercept": calibration.intercept,
        **figures(y, calibrated_oof, y_held, predict_pd(served, calibration, x_held), costs),
        "holdout_uncalibrated": calibration_report(y_held, served.predict(x_held)),
    }
    approve_all = decision_cost(y_held, np.zeros(y_held.size), APPROVE_ALL, **costs)
    report = {
        "data": str(args.local or "synthetic default"),
        "development": int(y.size),
        "holdout": int(y_held.size),
        "holdout_default_rate": y_held.mean(),
        "holdout_approve_all_cost": approve_all.cost_per_applicant,
        "before": old,
        "after": new,
        "after_minus_before": {
            k: new[k] - old[k] for k in ("oof_auc", "fold_auc_mean", "holdout_auc", "optimism")
        },
    }
    print(json.dumps(rounded(report), indent=2))


if __name__ == "__main__":
    main()
