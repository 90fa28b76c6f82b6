"""package: everything the service needs, in one folder under a version made of its content.

The folder (``package.dir``) is the stage's DVC output, so DVC caches, pushes and pulls the very
package the service runs; ``python -m credit_scoring.serving.store`` puts it into the BentoML
model store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from credit_scoring.artifacts import parse_json
from credit_scoring.atomic import atomic_path
from credit_scoring.contract.tables import KEY, load_contract
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration
from credit_scoring.modelling.cross_validation import FINAL_FIT_STATEMENTS, final_fit_on_all
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.modelling.threshold import oof_scores
from credit_scoring.serving.packaging import build_package
from pipelines.common import Params, log, read_parquet, require, run


def main(params: Params) -> None:
    cfg, paths, raw_dir = params["package"], params["features"], Path(params["data"]["raw_dir"])
    oof = params["train"]["oof"]
    scorecard = Scorecard.from_dict(params["scorecard"])  # a bad scale stops before any read
    inputs = {  # read first: a missing one leaves nothing behind
        "model_text": require(params["train"]["model"]).read_text(),
        "calibration": Calibration.from_json(require(params["train"]["calibration"]).read_text()),
        "schema": FeatureSchema.from_json(require(paths["schema"]).read_text()),
        "decision": ThresholdDecision.from_json(require(params["cost"]["out"]).read_text()),
        "holdout_report": json.loads(require(params["cost"]["holdout"]).read_text()),
        "train": read_parquet(paths["train"]),
        "oof": oof_scores(read_parquet(oof), name=oof),
        "test": read_parquet(raw_dir / "application_test.parquet"),
        "aggregates": read_parquet(params["aggregate"]["out"]),
        "fitting": fitting(params["train"]),
    }
    holdout_ids = read_parquet(paths["holdout"], columns=[KEY])[KEY]
    known = [inputs["train"][KEY], holdout_ids, inputs["test"][KEY]]
    with atomic_path(cfg["dir"]) as folder:
        manifest = build_package(
            folder,
            **inputs,
            scorecard=scorecard,
            known_ids=np.concatenate(known).astype("int64"),
            name=cfg["name"],
            contract=load_contract()["application_train"],
            required=cfg["required"],
            data={k: v for k, v in params["data"].items() if k not in ("raw_dir", "summary")},
            compare=cfg["compare"],
            importance_top=cfg["importance_top"],
            curve_points=params["cost"]["curve_points"],
            bins=cfg["histogram_bins"],
        )
    log.info("%s packaged in %s", manifest.tag, cfg["dir"])


def fitting(train: Params) -> dict[str, Any]:
    """Which applicants the served model was fitted on, in words, and the refit check."""
    final_fit_on_all(train["final_fit"])
    return {
        "final_fit": train["final_fit"],
        "statement": FINAL_FIT_STATEMENTS[train["final_fit"]],
        "refit_check": parse_json(
            require(train["refit"]).read_text(), train["refit"], lambda raw: raw["check"]
        ),
    }


if __name__ == "__main__":
    run(main)
