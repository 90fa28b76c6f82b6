"""threshold: the decision threshold that minimises the business cost on the out-of-fold scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dvclive import Live

from credit_scoring.atomic import write_json
from credit_scoring.modelling.threshold import ThresholdDecision, cost_curve, oof_scores, thin_curve
from pipelines.common import Params, log, read_parquet, run


def main(params: Params) -> None:
    cfg, oof = params["cost"], Path(params["train"]["oof"])
    y, p = oof_scores(read_parquet(oof), name=str(oof))
    decision = ThresholdDecision.choose(y, p, cost_fn=cfg["fn"], cost_fp=cfg["fp"])
    log.info(
        "threshold %.4g: %.4g per applicant (approve all %.4g, refuse all %.4g)",
        decision.threshold,
        decision.chosen.cost_per_applicant,
        decision.policies["approve_all"].cost_per_applicant,
        decision.policies["refuse_all"].cost_per_applicant,
    )
    write_json(decision.to_dict(), cfg["out"])
    with Live(dir=cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("threshold", decision.threshold, plot=False)
        live.log_metric("cost_per_applicant", decision.chosen.cost_per_applicant, plot=False)
        costs = {"cost_fn": cfg["fn"], "cost_fp": cfg["fp"]}
        curve = thin_curve(cost_curve(y, p, **costs), max_points=cfg["curve_points"])
        live.log_plot(
            "cost_curve",
            curve[["threshold", "cost_per_applicant"]],
            x="threshold",
            y="cost_per_applicant",
        )
        live.log_sklearn_plot(
            "confusion_matrix",
            np.where(y == 1, "default", "repaid"),
            np.where(p >= decision.threshold, "refuse", "approve"),
        )


if __name__ == "__main__":
    run(main)
