"""The hold-out: applicants set aside before anything is fitted, and the final figures on it.

Nothing that is fitted or chosen (early stopping, calibration, threshold) sees them; the served
model is the one fitted without them, so what is measured on them is what will be served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit

from credit_scoring.modelling.calibration import calibration_report
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.threshold import (
    best_threshold,
    decision_cost,
    policy_costs,
)


def holdout_mask(y: npt.ArrayLike, share: float, seed: int) -> np.ndarray:
    """A stratified, seeded choice of ``share`` of the applicants: True for the hold-out."""
    y = np.asarray(y)
    mask = np.zeros(y.size, dtype=bool)
    if share <= 0:
        return mask
    split = StratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
    _, held = next(split.split(np.zeros(y.size), y))
    mask[held] = True
    return mask


def holdout_report(
    y: npt.ArrayLike,
    uncalibrated: npt.ArrayLike,
    probability: npt.ArrayLike,
    *,
    decision: ThresholdDecision,
    oof: tuple[np.ndarray, np.ndarray],
    ratios: Sequence[float],
) -> dict[str, Any]:
    """The final figures, measured once on the hold-out: nothing measured here chose anything.

    ``probability`` is the served (calibrated) PD and ``uncalibrated`` the model's own, for the
    calibration before and after. The sensitivity rows choose a threshold on the out-of-fold
    scores ``oof`` for each FN:FP cost ratio, and report its cost and refusal rate here.
    """
    y, p = np.asarray(y, dtype="int64"), np.asarray(probability, dtype="float64")
    chosen = decision_cost(y, p, decision.threshold, decision.cost_fn, decision.cost_fp)
    sensitivity = []
    for ratio in ratios:
        costs = {"cost_fn": ratio * decision.cost_fp, "cost_fp": decision.cost_fp}
        threshold = best_threshold(*oof, **costs).threshold
        report = decision_cost(y, p, threshold, **costs)
        sensitivity.append(
            {
                "fn_to_fp": ratio,
                "threshold": threshold,
                "cost_per_applicant": report.cost_per_applicant,
                "refused_share": (report.tp + report.fp) / y.size,
            }
        )
    return {
        "applicants": int(y.size),
        "default_rate": float(y.mean()),
        "auc": float(roc_auc_score(y, p)),
        "logloss": float(log_loss(y, p, labels=[0, 1])),
        "threshold": decision.threshold,
        "cost_per_applicant": chosen.cost_per_applicant,
        "refused_share": (chosen.tp + chosen.fp) / y.size,
        "decision": chosen.to_dict(),
        "policies": {
            name: report.to_dict()
            for name, report in policy_costs(y, p, decision.cost_fn, decision.cost_fp).items()
        },
        "calibration": {
            "uncalibrated": calibration_report(y, uncalibrated),
            "calibrated": calibration_report(y, p),
        },
        "sensitivity": sensitivity,
    }
