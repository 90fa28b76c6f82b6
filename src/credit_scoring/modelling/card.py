"""The model card: what the service tells about its model beyond a score.

Quality, cost against the trivial policies, importance, and the approved and refused populations,
all from the out-of-fold scores (the final model has seen these applicants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.features.descriptions import describe
from credit_scoring.modelling.cross_validation import top_importance
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.threshold import cost_curve, thin_curve


def _histograms(values: np.ndarray, refused: np.ndarray, bins: int) -> dict[str, Any]:
    """One feature's distribution among approved and refused applicants, on shared bins."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return {"edges": [], "approved": [], "refused": []}
    edges = np.unique(np.quantile(present, np.linspace(0.01, 0.99, bins + 1)))
    out: dict[str, Any] = {"edges": edges.tolist()}
    for label, mask in (("approved", ~refused), ("refused", refused)):
        group = values[mask & ~np.isnan(values)]
        counts, _ = np.histogram(np.clip(group, edges[0], edges[-1]), bins=edges)
        out[label] = (counts / max(group.size, 1)).tolist()
        out[f"{label}_median"] = float(np.median(group)) if group.size else None
    return out


def model_card(
    *,
    booster: lgb.Booster,
    features: pd.DataFrame,
    oof: tuple[np.ndarray, np.ndarray],
    decision: ThresholdDecision,
    holdout: Mapping[str, Any],
    data: Mapping[str, Any],
    compare: Sequence[str],
    importance_top: int,
    curve_points: int,
    bins: int,
    fitting: Mapping[str, Any],
) -> dict[str, Any]:
    """What the service tells about its model beyond a score: quality, cost, importance, peers.

    ``features`` is the development feature table; ``oof`` its labels and calibrated
    out-of-fold scores, the basis of the population figures (the served model has seen these
    applicants); ``holdout`` the final figures on applicants the validated model was not fitted
    on; ``fitting`` which applicants the served model was fitted on, in words, and the refit check.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    y, p = oof
    refused = p >= decision.threshold
    curve = thin_curve(
        cost_curve(y, p, cost_fn=decision.cost_fn, cost_fp=decision.cost_fp),
        max_points=curve_points,
    )
    return {
        "metrics": {
            "oof_auc": float(roc_auc_score(y, p)),
            "oof_logloss": float(log_loss(y, p)),
            "applicants": int(y.size),
            "default_rate": float(y.mean()),
            "refused_share": float(refused.mean()),
            "holdout_auc": holdout["auc"],
            "holdout_cost_per_applicant": holdout["cost_per_applicant"],
            "holdout_applicants": holdout["applicants"],
        },
        "holdout": dict(holdout),
        "data": dict(data),
        "fitting": dict(fitting),
        "importance": [
            {**row, "description": describe(row["feature"])}
            for row in top_importance(booster, n=importance_top)
        ],
        "cost_curve": curve[["threshold", "cost_per_applicant"]].to_dict(orient="records"),
        "population": {
            name: _histograms(features[name].to_numpy("float64"), refused, bins) for name in compare
        },
        "typical": {
            name: float(value)
            for name, value in features.drop(columns=[KEY, TARGET], errors="ignore")
            .select_dtypes("number")  # the model's features, not the audited fields beside them
            .median()
            .items()
            if not np.isnan(value)
        },
    }
