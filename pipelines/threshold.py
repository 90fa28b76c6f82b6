"""threshold: the decision threshold that minimises the business cost on the out-of-fold scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dvclive import Live

from credit_scoring.cost import (
    RiskBands,
    best_threshold,
    cost_curve,
    oof_scores,
    policy_costs,
    thin_curve,
)
from credit_scoring.io import write_json
from pipelines.common import load_params, log, read_parquet, run


def main() -> None:
    params = load_params()
    cfg, oof = params["cost"], Path(params["train"]["oof"])
    y, p = oof_scores(read_parquet(oof), name=str(oof))
    costs = {"cost_fn": cfg["fn"], "cost_fp": cfg["fp"]}
    best = best_threshold(y, p, **costs)
    policies = policy_costs(y, p, **costs)
    log.info(
        "threshold %.4g: %.4g per applicant (approve all %.4g, refuse all %.4g)",
        best.threshold,
        best.cost_per_applicant,
        policies["approve_all"].cost_per_applicant,
        policies["refuse_all"].cost_per_applicant,
    )
    write_json(
        {
            **best.to_dict(),
            "rule": "refuse when probability >= threshold",
            "costs": {"fn": cfg["fn"], "fp": cfg["fp"]},
            "applicants": int(y.size),
            "default_rate": float(y.mean()),
            "policies": {name: report.to_dict() for name, report in policies.items()},
            "risk_bands": RiskBands.from_threshold(best.threshold).to_dict(),
        },
        cfg["out"],
    )
    with Live(dir=cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("threshold", best.threshold, plot=False)
        live.log_metric("cost_per_applicant", best.cost_per_applicant, plot=False)
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
            np.where(p >= best.threshold, "refuse", "approve"),
        )


if __name__ == "__main__":
    run(main)
