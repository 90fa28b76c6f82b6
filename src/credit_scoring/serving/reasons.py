"""Per-applicant explanations: TreeSHAP contributions in log-odds, and reason codes in words.

LightGBM's ``pred_contrib`` is TreeSHAP on the model's own tree path (identical to SHAP's
TreeExplainer without a background set), so it is exact for categorical splits too and the
contributions add up, with the base value, to the model's log-odds for that applicant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from credit_scoring.features.descriptions import describe

MAX_REASONS = 4  # adverse-action notices name up to four principal reasons


def contributions(booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
    """TreeSHAP contributions in log-odds, one row per applicant; the last column is the base."""
    return booster.predict(rows, pred_contrib=True, num_threads=1)


def _format(value: float) -> str:
    if math.isnan(value):
        return "missing"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def reason_text(description: str, value: Any, typical: float | None) -> str:
    """Why a feature pushed toward default, in the words of an adverse-action notice.

    ``value`` is as the caller knows it (a label, a number, or None when missing); a number is
    set against the typical (median) training value, which is what "high" and "low" mean.
    """
    if value is None:
        return f"{description}: not known"
    if isinstance(value, str):
        return f"{description}: {value}"
    if typical is None or math.isnan(typical) or value == typical:
        return f"{description}: {_format(value)}"
    level = "high" if value > typical else "low"
    return f"{description} is {level} ({_format(value)}; typical {_format(typical)})"


def explanation(
    row: np.ndarray,
    contribution: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Mapping[str, Sequence[str]],
    typical: Mapping[str, float],
    top_k: int,
    refused: bool,
) -> dict[str, Any]:
    """The top-k contributions of one applicant and, if refused, the reasons in words.

    ``row`` is the model's feature row (category codes included), ``contribution`` that
    applicant's row of :func:`contributions`. Reasons are the strongest features pushing toward
    default, only for a refusal, as an adverse-action notice gives them.
    """
    base, parts = float(contribution[-1]), contribution[:-1]
    order = np.argsort(-np.abs(parts), kind="stable")

    def item(i: int) -> dict[str, Any]:
        name = features[i]
        value = _shown(row[i], categorical.get(name))
        return {
            "feature": name,
            "description": describe(name),
            "value": value,
            "contribution": float(parts[i]),
            "direction": "raises risk" if parts[i] > 0 else "lowers risk",
        }

    top = [item(int(i)) for i in order[:top_k]]
    reasons = []
    if refused:
        for i in np.argsort(-parts, kind="stable")[:MAX_REASONS]:
            if parts[i] <= 0:
                break
            entry = item(int(i))
            text = reason_text(
                entry["description"][:1].upper() + entry["description"][1:],
                entry["value"],
                typical.get(entry["feature"]),
            )
            reasons.append({"code": entry["feature"], "text": text})
    return {
        "base_value": base,
        "log_odds": base + float(parts.sum()),
        "contributions": top,
        "other_contribution": float(parts[order[top_k:]].sum()),
        "reasons": reasons,
    }


def _shown(code: float, levels: Sequence[str] | None) -> Any:
    """A feature value as the caller knows it: the label of a category, None when missing."""
    if math.isnan(code):
        return None
    if levels is None:
        return float(code)
    return levels[int(code)] if int(code) < len(levels) else "unknown level"
