"""What the threshold stage decides, as ``threshold.json`` holds it and every reader reads it.

The rule is "refuse when probability >= threshold"; beside the threshold stand its cost, the
trivial policies, the risk grades and the band referred to an officer. These are plain values
over numpy, read by the service; :mod:`credit_scoring.modelling.threshold` finds them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from credit_scoring.artifacts import parse_json
from credit_scoring.errors import ConfigError

# "Approve everyone" as a threshold: the smallest float above every probability, so the rule
# stays one comparison and the value stays finite (JSON has no infinity).
APPROVE_ALL = math.nextafter(1.0, math.inf)
POLICIES = {"approve_all": APPROVE_ALL, "refuse_all": 0.0, "threshold_0_5": 0.5}


@dataclass(frozen=True)
class CostReport:
    """The outcome of one threshold on a set of scored applicants."""

    threshold: float
    tn: int
    fp: int
    fn: int
    tp: int
    cost: float
    cost_per_applicant: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, the same for the chosen threshold and the baseline policies."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CostReport:
        return cls(**{f.name: raw[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class RiskBands:
    """Risk grades (a master scale): A is the safest, and the default rate rises grade by grade.

    :func:`~credit_scoring.modelling.threshold.derive_bands` sets the edges from observed default
    rates on out-of-fold scores, with the decision threshold among them, so a refused applicant
    never shares a grade with an approved one. The service reads the edges from
    ``threshold.json`` (:meth:`from_dict`) rather than recomputing them, so it grades exactly as
    the artifact says.
    """

    edges: tuple[float, ...]
    labels: tuple[str, ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Sequence[Any]]) -> RiskBands:
        """The bands as ``threshold.json`` stores them: what the service should use."""
        return cls(edges=tuple(map(float, raw["edges"])), labels=tuple(raw["labels"]))

    def to_dict(self) -> dict[str, list[Any]]:
        """The JSON form read back by :meth:`from_dict`."""
        return {"edges": list(self.edges), "labels": list(self.labels)}

    def _index(self, p: npt.ArrayLike) -> np.ndarray:
        # An edge belongs to the band above it, as the threshold belongs to "refuse".
        return np.searchsorted(self.edges, p, side="right")

    def band(self, p: float) -> str:
        """The band of one probability."""
        return self.labels[int(self._index(p))]

    def bands(self, p: npt.ArrayLike) -> np.ndarray:
        """The bands of many probabilities, by the same rule as :meth:`band`."""
        return np.asarray(self.labels)[self._index(p)]


RULE = "refuse when probability >= threshold"
RECOMMENDATIONS = ("approve", "refer", "refuse")


@dataclass(frozen=True)
class ReferBand:
    """Where the model is least sure: applicants whose odds of default lie within a factor
    ``odds_factor`` of the threshold's are referred to a credit officer rather than decided.

    ``[low, high)`` in probability; ``odds_factor`` 1 is no band at all. Outside it the
    recommendation is the threshold's decision.
    """

    odds_factor: float
    low: float
    high: float

    @classmethod
    def around(cls, threshold: float, odds_factor: float) -> ReferBand:
        if odds_factor < 1:
            raise ConfigError(f"cost.refer_odds: must be at least 1, got {odds_factor}")
        t = min(threshold, 1.0)
        odds = t / (1 - t) if t < 1 else math.inf
        low = odds / odds_factor / (1 + odds / odds_factor) if math.isfinite(odds) else 1.0
        high = odds * odds_factor / (1 + odds * odds_factor) if math.isfinite(odds) else 1.0
        return cls(odds_factor=float(odds_factor), low=float(low), high=float(max(high, t)))

    def recommend(self, p: npt.ArrayLike, threshold: float) -> np.ndarray:
        """approve, refer or refuse for each probability; the threshold's decision outside."""
        p = np.asarray(p, dtype="float64")
        referred = (p >= self.low) & (p < self.high)
        return np.where(referred, "refer", np.where(p >= threshold, "refuse", "approve"))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReferBand:
        return cls(**{f.name: float(raw[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class ThresholdDecision:
    """What the threshold stage decides and ``threshold.json`` holds; every reader reads this.

    The chosen threshold with its confusion counts and cost on the out-of-fold scores, the costs
    it minimised, the trivial policies on the same scores, and the risk bands around it.
    """

    chosen: CostReport
    cost_fn: float
    cost_fp: float
    applicants: int
    default_rate: float
    policies: Mapping[str, CostReport]
    bands: RiskBands
    refer: ReferBand

    @property
    def threshold(self) -> float:
        return self.chosen.threshold

    @property
    def refused_share(self) -> float:
        """The share of the scored applicants the threshold refuses."""
        return (self.chosen.tp + self.chosen.fp) / self.applicants

    def recommend(self, p: npt.ArrayLike) -> np.ndarray:
        """The model's recommendation for each probability: approve, refer or refuse."""
        return self.refer.recommend(p, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.chosen.to_dict(),
            "rule": RULE,
            "costs": {"fn": self.cost_fn, "fp": self.cost_fp},
            "applicants": self.applicants,
            "default_rate": self.default_rate,
            "policies": {name: report.to_dict() for name, report in self.policies.items()},
            "risk_bands": self.bands.to_dict(),
            "refer": self.refer.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ThresholdDecision:
        return cls(
            chosen=CostReport.from_dict(raw),
            cost_fn=raw["costs"]["fn"],
            cost_fp=raw["costs"]["fp"],
            applicants=raw["applicants"],
            default_rate=raw["default_rate"],
            policies={k: CostReport.from_dict(v) for k, v in raw["policies"].items()},
            bands=RiskBands.from_dict(raw["risk_bands"]),
            refer=ReferBand.from_dict(raw["refer"]),
        )

    @classmethod
    def from_json(cls, text: str) -> ThresholdDecision:
        return parse_json(text, "threshold decision", cls.from_dict)
