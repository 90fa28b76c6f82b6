"""Per-applicant explanations: TreeSHAP contributions in log-odds, and reasons in words.

LightGBM's ``pred_contrib`` is TreeSHAP on the model's own tree path (identical to SHAP's
TreeExplainer without a background set), so it is exact for categorical splits too and the
contributions add up, with the base value, to the model's log-odds for that applicant.

A refusal's reasons are reason families (``reason_codes.yaml``), not single features: the
contributions of a family's features are summed, and up to four families that push toward
default are named, each once, worded from the family's strongest feature in the units people
use (age in years) with a direction that follows the value.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import yaml

from credit_scoring.errors import ArtifactError
from credit_scoring.features.descriptions import describe

MAX_REASONS = 4  # adverse-action notices name up to four principal reasons
DAYS_PER_YEAR = 365.25
DENIED = -1  # the family index of a feature that is never a stated reason
IN_YEARS = {  # day counts (negative: before the application) that read in years, and what of
    "DAYS_BIRTH": "",
    "DAYS_EMPLOYED": " in the current job",
    "DAYS_REGISTRATION": " since the registration changed",
    "DAYS_ID_PUBLISH": " since the identity document changed",
    "DAYS_LAST_PHONE_CHANGE": " since the phone changed",
}


@dataclass(frozen=True)
class Family:
    """One reason: its code, how it reads, and the features (name patterns) it gathers."""

    code: str
    title: str
    patterns: tuple[str, ...]
    lower: str = "lower values go with more defaults here"
    higher: str = "higher values go with more defaults here"

    def matches(self, feature: str) -> bool:
        return any(re.fullmatch(p, feature) for p in self.patterns)


@dataclass(frozen=True)
class ReasonCodes:
    """The versioned map from feature to reason family, the features never stated, and the
    reasons an officer may give for overruling the model."""

    version: int
    deny: tuple[str, ...]
    families: tuple[Family, ...]
    overrides: tuple[tuple[str, str], ...]  # (code, text): why an officer departs from the model

    @classmethod
    def default(cls) -> ReasonCodes:
        """The map shipped with the library (``reason_codes.yaml``), which a package copies."""
        text = resources.files("credit_scoring.serving").joinpath("reason_codes.yaml").read_text()
        return cls.from_dict(yaml.safe_load(text))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReasonCodes:
        try:
            return cls(
                version=int(raw["version"]),
                deny=tuple(raw["deny"]),
                families=tuple(
                    Family(**{**f, "patterns": tuple(f["patterns"])}) for f in raw["families"]
                ),
                overrides=tuple((o["code"], o["text"]) for o in raw["overrides"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"reason codes: not readable ({err!r})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "deny": list(self.deny),
            "families": [
                {
                    "code": f.code,
                    "title": f.title,
                    "lower": f.lower,
                    "higher": f.higher,
                    "patterns": list(f.patterns),
                }
                for f in self.families
            ],
            "overrides": [{"code": code, "text": text} for code, text in self.overrides],
        }

    def denied(self, feature: str) -> bool:
        return any(re.fullmatch(p, feature) for p in self.deny)

    @functools.cache  # noqa: B019 - one map per package, asked for one feature list
    def family_index(self, features: tuple[str, ...]) -> np.ndarray:
        """Each feature's family (its index in ``families``), or DENIED."""
        return np.array(
            [
                DENIED
                if self.denied(name)
                else next(i for i, f in enumerate(self.families) if f.matches(name))
                for name in features
            ],
            dtype="int64",
        )


def _format(value: float) -> str:
    if math.isnan(value):
        return "missing"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _measure(feature: str, value: float) -> tuple[float, str]:
    """A value in the units people use, as a magnitude to compare and as text.

    Day counts are negative (days before the application): the known ones read in years, any
    other as days before the application, so that "lower" always means "less of it".
    """
    if feature in IN_YEARS and value <= 0:
        years = -value / DAYS_PER_YEAR
        return years, f"{years:.0f} years" if years >= 2 else f"{years:.1f} years"
    if "DAYS" in feature and value <= 0:
        return -value, f"{_format(-value)} days before"
    return value, _format(value)


def reason_text(family: Family, feature: str, value: Any, typical: float | None) -> str:
    """One reason of an adverse-action notice, from the family's strongest feature.

    ``value`` is as the caller knows it (a label, a number, or None when missing); a number is
    set against the typical (median) training value, and the direction follows where it lies.
    """
    if value is None:
        return f"{family.title}: {describe(feature)} not known"
    if isinstance(value, str):
        return f"{family.title}: {describe(feature)} is {value}"
    magnitude, shown = _measure(feature, float(value))
    said = f"{shown}{IN_YEARS[feature]}" if feature in IN_YEARS else f"{describe(feature)} {shown}"
    if typical is None or math.isnan(typical):
        return f"{family.title}: {said}"
    usual, usual_shown = _measure(feature, float(typical))
    if magnitude == usual:
        return f"{family.title}: {said} (typical {usual_shown})"
    direction = family.lower if magnitude < usual else family.higher
    return f"{family.title}: {said} (typical {usual_shown}); {direction}"


def reasons(
    row: np.ndarray,
    contribution: np.ndarray,
    *,
    features: tuple[str, ...],
    categorical: Mapping[str, Sequence[str]],
    typical: Mapping[str, float],
    codes: ReasonCodes,
) -> list[dict[str, Any]]:
    """Up to four distinct reason families that push this applicant toward default, strongest
    first, each with its summed contribution; denied features never count toward one.
    """
    parts = contribution[: len(features)]
    family = codes.family_index(features)
    stated = family != DENIED
    sums = np.bincount(family[stated], weights=parts[stated], minlength=len(codes.families))
    out = []
    for f in np.argsort(-sums, kind="stable")[:MAX_REASONS]:
        if sums[f] <= 0:
            break
        members = np.flatnonzero(family == f)
        i = int(members[np.argmax(parts[members])])
        name = features[i]
        out.append(
            {
                "code": codes.families[f].code,
                "feature": name,
                "contribution": float(sums[f]),
                "text": reason_text(
                    codes.families[f],
                    name,
                    _shown(row[i], categorical.get(name)),
                    typical.get(name),
                ),
            }
        )
    return out


def explanation(
    row: np.ndarray,
    contribution: np.ndarray,
    *,
    points: np.ndarray,
    features: tuple[str, ...],
    categorical: Mapping[str, Sequence[str]],
    top_k: int,
) -> dict[str, Any]:
    """The top-k contributions of one applicant, strongest first, and the rest summed.

    ``row`` is the model's feature row (category codes included), ``contribution`` that
    applicant's row of contributions (base value last), and ``points`` the same row on the
    score's scale (:meth:`Scorecard.contribution_points`), given beside each log-odds value.
    """
    base, parts = float(contribution[-1]), contribution[:-1]
    base_points, part_points = float(points[-1]), points[:-1]
    order = np.argsort(-np.abs(parts), kind="stable")

    def item(i: int) -> dict[str, Any]:
        name = features[i]
        return {
            "feature": name,
            "description": describe(name),
            "value": _shown(row[i], categorical.get(name)),
            "contribution": float(parts[i]),
            "points": float(part_points[i]),
            "direction": "raises risk" if parts[i] > 0 else "lowers risk",
        }

    return {
        "base_value": base,
        "base_points": base_points,
        "log_odds": base + float(parts.sum()),
        "contributions": [item(int(i)) for i in order[:top_k]],
        "other_contribution": float(parts[order[top_k:]].sum()),
        "other_points": float(part_points[order[top_k:]].sum()),
    }


def _shown(code: float, levels: Sequence[str] | None) -> Any:
    """A feature value as the caller knows it: the label of a category, None when missing."""
    if math.isnan(code):
        return None
    if levels is None:
        return float(code)
    return levels[int(code)] if int(code) < len(levels) else "unknown level"
