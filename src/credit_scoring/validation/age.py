"""Regulation B on age: applicants aged 62 or over may not be scored down for their age.

12 CFR 1002.6(b)(2) lets an empirically derived system use age, provided an elderly applicant's
age is not assigned a negative value. In a tree model's terms: for every such applicant, the
summed TreeSHAP contribution of the features derived from age must not push toward default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from credit_scoring.errors import ConfigError
from credit_scoring.validation.fairness import DAYS_PER_YEAR

ELDERLY = 62  # Regulation B's "elderly": aged 62 or older


def age_check(
    contributions: npt.ArrayLike,
    features: Sequence[str],
    days_birth: npt.ArrayLike,
    age_features: Sequence[str],
    min_age: float = ELDERLY,
) -> dict[str, Any]:
    """Whether age pushes any applicant aged ``min_age`` or over toward refusal.

    Args:
        contributions: TreeSHAP contributions, one row per applicant, one column per feature
            (a trailing base column is allowed and ignored), in log-odds of default.
        features: the model's feature names, in the columns' order.
        days_birth: each applicant's DAYS_BIRTH (days before the application, negative).
        age_features: the features derived from age; their contributions are summed.
        min_age: the age from which applicants are protected.

    Returns:
        The ``age`` section of the validation report: applicants, share_toward_refusal,
        max_contribution (the largest summed push, in log-odds; None without applicants),
        passes.

    Raises:
        ConfigError: an age feature that is not a feature of the model.
    """
    unknown = [name for name in age_features if name not in features]
    if unknown:
        raise ConfigError(f"validate.age_features: {unknown} are not features of the model")
    columns = [list(features).index(name) for name in age_features]
    elderly = -np.asarray(days_birth, dtype="float64") / DAYS_PER_YEAR >= min_age
    push = np.asarray(contributions, dtype="float64")[elderly][:, columns].sum(axis=1)
    return {
        "applicants": int(elderly.sum()),
        "min_age": min_age,
        "features": list(age_features),
        "share_toward_refusal": float(np.mean(push > 0)) if push.size else 0.0,
        "max_contribution": float(push.max()) if push.size else None,
        "passes": bool(np.all(push <= 0)),
    }
