"""The tuned settings against the default, and the final fit on every applicant against the
development fit, on the same hold-out.

    python -m benchmarks.tuning --work /tmp/tuning_genuine --local ../shared/data/home-credit-sample
    python -m benchmarks.tuning --work /tmp/tuning_default --tuned conf/model/tuned.yaml

The first run prepares ``--work``: download, aggregate and features (the synthetic default, or
``--local`` genuine CSVs), and a copy of ``conf/``. The tune stage then runs there as
``make tune`` runs it (timed), unless ``--tuned`` gives a config it already wrote. For the
default model and the tuned one:

* the train and threshold stages run as the pipeline runs them: the hold-out AUC and cost per
  applicant of ``reports/holdout.json``, which no step of either model's training saw;
* the final-fit choice is judged on rows neither fit saw: the hold-out is split in two halves
  (stratified, seeded); the validated model is fitted on the development applicants, the
  refitted one on them and the first half, with the same settings and rounds; both are scored
  on the second half at the threshold chosen on the out-of-fold scores. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from benchmarks.common import machine
from credit_scoring.config import compose_params
from credit_scoring.contract.tables import TARGET
from credit_scoring.cores import available_cores
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import train_model
from credit_scoring.modelling.threshold import choose_threshold, decision_cost
from tests.support.stages import ROOT, SPEC, run_stage

MODELS = ("default", "tuned")


def params_of(work: Path, overrides: list[str], model: str) -> dict:
    """``work/params.yaml`` composed from ``work/conf`` (which holds the tuned config)."""
    text = compose_params(work / "conf", [f"aggregate.spec={SPEC}", *overrides, f"model={model}"])
    (work / "params.yaml").write_text(text)
    return yaml.safe_load(text)


def prepare(work: Path, overrides: list[str]) -> None:
    shutil.copytree(ROOT / "conf", work / "conf")
    params_of(work, overrides, "default")
    for stage in ("download", "aggregate", "features"):
        run_stage(stage, work)


def pipeline_figures(work: Path) -> dict:
    """The train and threshold stages; the hold-out report's headline figures."""
    for stage in ("train", "threshold"):
        run_stage(stage, work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    report = json.loads((work / params["cost"]["holdout"]).read_text())
    return {
        "holdout_auc": report["auc"],
        "holdout_cost_per_applicant": report["cost_per_applicant"],
    }


def final_fit_figures(params: dict, work: Path, seed: int = 0) -> dict:
    """The validated and the refitted model on the half of the hold-out neither was fitted on."""
    paths, model, cost = params["features"], params["model"], params["cost"]
    schema = FeatureSchema.from_json((work / paths["schema"]).read_text())
    features = list(schema.features)
    dev = pd.read_parquet(work / paths["train"])
    held = pd.read_parquet(work / paths["holdout"])
    refit_half, judged = train_test_split(
        held, test_size=0.5, stratify=held[TARGET], random_state=seed
    )
    trained = train_model(
        dev[features].to_numpy(),
        dev[TARGET].to_numpy(),
        features=schema.features,
        categorical=schema.categorical_indices,
        model=model,
        cores=available_cores(params["train"]["threads"]),
        holdout=(refit_half[features].to_numpy(), refit_half[TARGET].to_numpy()),
    )
    oof = trained.calibration.probability(trained.cv.oof)
    decision = choose_threshold(
        dev[TARGET].to_numpy(),
        oof,
        cost_fn=cost["fn"],
        cost_fp=cost["fp"],
        grades=cost["grades"],
        refer_odds=cost["refer_odds"],
    )
    y = judged[TARGET].to_numpy()
    out = {"judged_applicants": int(y.size)}
    for name, booster in (("development", trained.booster), ("all", trained.refitted)):
        p = trained.calibration.probability(booster.predict(judged[features].to_numpy()))
        out[name] = {
            "auc": float(roc_auc_score(y, p)),
            "cost_per_applicant": decision_cost(
                y, p, decision.threshold, cost_fn=cost["fn"], cost_fp=cost["fp"]
            ).cost_per_applicant,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--local", type=Path, help="genuine Kaggle CSVs (else synthetic)")
    parser.add_argument("--tuned", type=Path, help="a tuned config already written (no search)")
    args = parser.parse_args()
    overrides = ["data=local", f"data.path={args.local.resolve()}"] if args.local else []
    if not (args.work / "params.yaml").exists():
        prepare(args.work, overrides)
    result: dict = {"machine": machine(), "data": overrides or ["data=synthetic"]}
    if args.tuned:
        shutil.copy(args.tuned, args.work / "conf" / "model" / "tuned.yaml")
    else:
        params_of(args.work, overrides, "default")
        start = time.perf_counter()
        run_stage("tune", args.work)
        result["tune_seconds"] = round(time.perf_counter() - start, 1)
        result["tune"] = {
            k: v
            for k, v in json.loads((args.work / "reports" / "tuning.json").read_text()).items()
            if k in ("study", "trials", "best", "own", "importances")
        }
    for model in MODELS:
        params = params_of(args.work, overrides, model)
        result[model] = {
            **pipeline_figures(args.work),
            "final_fit": final_fit_figures(params, args.work),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
