"""Scorecard points: the calibrated probability of default on the credit industry's scale.

Applicants and credit officers read a score in points, not a probability. The scale is fixed by
three numbers: ``base_score`` points at ``base_odds`` good:bad odds, and ``points_to_double``
(PDO) points more for every doubling of the odds. With ``factor = pdo / ln 2`` and
``offset = base_score - factor · ln(base_odds)``::

    score = offset + factor · ln((1 - p) / p)

so a higher score is a lower risk. The map is strictly decreasing in p, hence the decision rule
"refuse when p >= threshold" reads "refuse when score <= cut-off", the cut-off being
``points(threshold)``. The service decides on the probability; the score is how it is shown.

The score is affine in the log-odds of default, so TreeSHAP's additivity carries over: a
contribution of +c to the log-odds is -factor · c points, and the base value b becomes
``offset - factor · b`` points; base and contributions in points add up to the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from credit_scoring.artifacts import parse_json
from credit_scoring.errors import ConfigError
from credit_scoring.modelling.calibration import EPS

SECTION = "scorecard"  # the config group and params.yaml section the scale comes from
SCORE_RULE = "refuse when score <= cutoff_score"  # the threshold's rule, read in points


@dataclass(frozen=True)
class Scorecard:
    """The points scale: ``base_score`` at ``base_odds`` (good:bad), ``points_to_double`` (PDO).

    ``scorecard.json`` in the package; the ``package`` stage builds it from ``params.yaml``'s
    ``scorecard`` section (``conf/scorecard/``).
    """

    base_score: float
    base_odds: float
    points_to_double: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{SECTION}.{f.name}: expected a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{SECTION}.{f.name}: must be finite, got {value!r}")
        for name in ("base_odds", "points_to_double"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{SECTION}.{name}: must be > 0, got {getattr(self, name)!r}")

    @property
    def factor(self) -> float:
        """Points per unit of log-odds (good:bad): ``points_to_double / ln 2``."""
        return self.points_to_double / math.log(2)

    @property
    def offset(self) -> float:
        """The score at even odds (1:1): ``base_score - factor · ln(base_odds)``."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, p: npt.ArrayLike) -> float | np.ndarray:
        """The score of probabilities of default (a float for a scalar, else an array).

        ``p`` is clipped into [1e-15, 1 - 1e-15] first (the calibration's own bound), so 0 and
        1 give finite scores (about +1484 and -510 on the default scale) rather than ±inf;
        :meth:`probability` of those gives the clipped probability back.
        """
        q = np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
        score = self.offset + self.factor * (np.log1p(-q) - np.log(q))
        return float(score) if score.ndim == 0 else score

    def probability(self, points: npt.ArrayLike) -> float | np.ndarray:
        """The probability of default of scores: the exact inverse of :meth:`points`."""
        good_log_odds = (np.asarray(points, dtype="float64") - self.offset) / self.factor
        p = special.expit(-good_log_odds)
        return float(p) if p.ndim == 0 else p

    def contribution_points(self, log_odds_contributions: npt.ArrayLike) -> np.ndarray:
        """TreeSHAP contributions (log-odds of default, base value last) in points.

        A contribution of +c is ``-factor · c`` points (it raises the risk, so it lowers the
        score); the base value b becomes ``offset - factor · b``. For additive contributions,
        whose base plus sum is the logit of p, the points (base included) sum to
        ``points(p)``. One row or many (the last axis is the features, then the base).
        """
        c = np.asarray(log_odds_contributions, dtype="float64")
        out = -self.factor * c
        out[..., -1] += self.offset
        return out

    def to_dict(self) -> dict[str, float]:
        """The JSON form (``scorecard.json``), read back by :meth:`from_dict`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self, threshold: float) -> dict[str, Any]:
        """The scale with its factor and offset, and a threshold's cut-off score: for readers."""
        return {
            **self.to_dict(),
            "factor": self.factor,
            "offset": self.offset,
            "cutoff_score": self.points(threshold),
            "rule": SCORE_RULE,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Scorecard:
        """The scale from its JSON or params form; a missing or bad value is a ConfigError."""
        missing = [f.name for f in fields(cls) if f.name not in raw]
        if missing:
            raise ConfigError(f"{SECTION}.{missing[0]}: missing")
        return cls(**{f.name: raw[f.name] for f in fields(cls)})

    @classmethod
    def from_json(cls, text: str) -> Scorecard:
        """The scale as the package stores it; a malformed one is an ArtifactError."""
        return parse_json(text, "scorecard", cls.from_dict)
