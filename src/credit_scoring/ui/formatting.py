"""Numbers and names as a loan officer reads them, shared by the figures and the texts."""

from __future__ import annotations

import math
from typing import Any

DAYS_PER_YEAR = 365.25  # DAYS_* fields count days before the application; people think in years
POLICIES = {
    "approve_all": "approve everyone",
    "refuse_all": "refuse everyone",
    "threshold_0_5": "threshold 0.5",
}


def sentence(text: str) -> str:
    """A description as a label: first letter capitalised, the rest as the service wrote it."""
    return text[:1].upper() + text[1:]


def format_value(value: Any) -> str:
    """A field's value as a person reads it: thousands separated, a few significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, str):
        return value or "missing"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def percent(p: float) -> str:
    """A probability as a percentage, with more digits when it is tiny."""
    return f"{p:.1%}" if p >= 0.001 else f"{p:.3%}"


def points(score: float) -> str:
    """A score as a person reads it: whole points, as scorecards print them."""
    return f"{score:.0f} points"


def points_change(delta: float) -> str:
    """A contribution in points, signed, to a tenth (most move the score by a few points)."""
    return f"{delta:+.1f} points"


def policy_name(key: str) -> str:
    """A trivial policy's key in words."""
    return POLICIES.get(key, key.replace("_", " "))
