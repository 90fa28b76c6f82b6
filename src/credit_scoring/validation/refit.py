"""The refit check: whether refitting the validated model on every applicant changed it.

With ``train.final_fit: all`` the served model is refitted on the development and hold-out
applicants with the validated settings and number of rounds, so no data is left to measure it
on out of sample; the hold-out figures describe the validated model. What can be shown is that
the refit behaves like the model that was validated: on the hold-out applicants, the two
models' PDs rank alike (Spearman's rank correlation), are distributed alike (PSI), and lead to
the same decisions at the chosen threshold. The refitted model has seen these applicants,
so the check bounds a change; it is no estimate of performance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from credit_scoring.errors import ConfigError
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.validation.stability import psi


@dataclass(frozen=True)
class RefitLimits:
    """``train.refit_limits``: how far the refitted model may depart from the validated one."""

    rank_correlation_loss: float  # 1 - Spearman's rank correlation of the two models' PDs
    psi: float  # of the refitted PDs against the validated ones
    flip_share: float  # of applicants refused by one model and not the other, at the threshold

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RefitLimits:
        """Raises:
        ConfigError: a missing or unknown limit, or one that is not a number from 0 to 1."""
        names = {f.name for f in fields(cls)}
        if set(raw) != names:
            raise ConfigError(f"train.refit_limits: expected the limits {sorted(names)}")
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ConfigError(f"train.refit_limits.{name}: {value!r} is not from 0 to 1")
        return cls(**{name: float(raw[name]) for name in names})


def refit_check(
    validated: np.ndarray,
    refitted: np.ndarray,
    *,
    decision: ThresholdDecision,
    limits: RefitLimits,
    bins: int,
) -> dict[str, Any]:
    """The check on the hold-out applicants' calibrated PDs from the two models.

    Returns the measures, the limits, how many recommendations (approve, refer, refuse) move
    in each direction, and ``failed``: a line for every measure past its limit (empty when the
    refit passes).
    """
    before, after = decision.recommend(validated), decision.recommend(refitted)
    correlation = float(spearmanr(validated, refitted).statistic)
    refused = validated >= decision.threshold, refitted >= decision.threshold
    measures = {
        "rank_correlation_loss": 1.0 - correlation,
        "psi": psi(validated, refitted, bins=bins),
        "flip_share": float(np.mean(refused[0] != refused[1])),
    }
    labels = sorted(set(before) | set(after))
    return {
        "applicants": int(validated.size),
        "rank_correlation": correlation,
        **measures,
        "limits": asdict(limits),
        "recommendations_moved": {
            f"{a} -> {b}": int(np.sum((before == a) & (after == b)))
            for a in labels
            for b in labels
            if a != b
        },
        "failed": [
            f"refit check: {name} {value:.4g} > train.refit_limits.{name} {getattr(limits, name):g}"
            for name, value in measures.items()
            if value > getattr(limits, name)
        ],
    }
