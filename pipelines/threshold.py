"""threshold: the threshold that minimises the business cost, then the figures on the hold-out.

The threshold is chosen on the calibrated out-of-fold scores. Then, once, the hold-out's labels
are read for the final report: the cost at that threshold, the trivial policies, the
calibration before and after, and the cost-ratio sensitivity. Nothing is chosen after that.
When the served model was refitted on every applicant (``train.final_fit: all``), the refit
check compares it with the validated model on the hold-out and stops the pipeline past
``train.refit_limits``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from dvclive import Live

from credit_scoring.atomic import write_json
from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.errors import InputError
from credit_scoring.modelling.calibration import calibration_table
from credit_scoring.modelling.cross_validation import (
    PROBABILITY,
    REFITTED,
    UNCALIBRATED,
    final_fit_on_all,
)
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.holdout import holdout_report
from credit_scoring.modelling.threshold import choose_threshold, cost_curve, oof_scores, thin_curve
from credit_scoring.validation.refit import RefitLimits, refit_check
from pipelines.common import Params, log, read_parquet, run


def main(params: Params) -> None:
    cfg, train = params["cost"], params["train"]
    y, p = oof_scores(read_parquet(train["oof"]), name=train["oof"])
    scored = read_parquet(train["holdout"])
    decision = choose_threshold(
        y,
        p,
        cost_fn=cfg["fn"],
        cost_fp=cfg["fp"],
        grades=cfg["grades"],
        refer_odds=cfg["refer_odds"],
    )

    # The final report, once the threshold is chosen: the one place the hold-out's labels are read.
    held = scored.merge(
        read_parquet(params["features"]["holdout"], columns=[KEY, TARGET]), on=KEY, validate="1:1"
    )
    report = holdout_report(
        held[TARGET],
        held[UNCALIBRATED],
        held[PROBABILITY],
        decision=decision,
        oof=(y, p),
        ratios=cfg["sensitivity"],
    )
    write_json(decision.to_dict(), cfg["out"])
    write_json(report, cfg["holdout"])
    check_refit(scored, decision, train, bins=params["validate"]["psi_bins"])
    log.info(
        "threshold %.4g: %.4g per applicant on the hold-out (%.4g out of fold; approve all %.4g)",
        decision.threshold,
        report["cost_per_applicant"],
        decision.chosen.cost_per_applicant,
        report["policies"]["approve_all"]["cost_per_applicant"],
    )
    with Live(dir=cfg["live_dir"], dvcyaml=False, save_dvc_exp=False) as live:
        live.log_metric("cost_per_applicant", report["cost_per_applicant"], plot=False)
        live.log_metric("threshold", decision.threshold, plot=False)
        live.log_metric("holdout_auc", report["auc"], plot=False)
        live.log_metric("oof_cost_per_applicant", decision.chosen.cost_per_applicant, plot=False)
        live.log_metric("brier", report["calibration"]["calibrated"]["brier"], plot=False)
        costs = {"cost_fn": cfg["fn"], "cost_fp": cfg["fp"]}
        curve = thin_curve(cost_curve(y, p, **costs), max_points=cfg["curve_points"])
        live.log_plot(
            "cost_curve",
            curve[["threshold", "cost_per_applicant"]],
            x="threshold",
            y="cost_per_applicant",
        )
        live.log_plot(
            "calibration",
            calibration_table(
                held[TARGET], held[UNCALIBRATED], held[PROBABILITY], cfg["calibration_bins"]
            ),
            x="observed",
            y=["uncalibrated", "calibrated", "diagonal"],
        )
        live.log_sklearn_plot(
            "confusion_matrix",
            np.where(held[TARGET] == 1, "default", "repaid"),
            np.where(held[PROBABILITY] >= decision.threshold, "refuse", "approve"),
        )


def check_refit(
    scored: pd.DataFrame, decision: ThresholdDecision, train: Params, bins: int
) -> None:
    """Write the refit check (or that there was no refit) and stop past its limits."""
    limits = RefitLimits.from_dict(train["refit_limits"])
    if not final_fit_on_all(train["final_fit"]):
        write_json({"final_fit": train["final_fit"], "check": None}, train["refit"])
        return
    if REFITTED not in scored:
        raise InputError(f"{train['holdout']}: no {REFITTED!r} column; rerun the train stage")
    check = refit_check(
        scored[PROBABILITY].to_numpy(),
        scored[REFITTED].to_numpy(),
        decision=decision,
        limits=limits,
        bins=bins,
    )
    write_json({"final_fit": train["final_fit"], "check": check}, train["refit"])
    log.info(
        "refit check: rank correlation %.4f, PSI %.4f, %.2f%% of decisions flip",
        check["rank_correlation"],
        check["psi"],
        100 * check["flip_share"],
    )
    if check["failed"]:
        raise InputError("; ".join(check["failed"]) + f" (see {train['refit']})")


if __name__ == "__main__":
    run(main)
