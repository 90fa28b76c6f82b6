"""Calibrated probabilities of default, and how calibrated a set of probabilities is.

Platt scaling on the model's log-odds: ``logit(p) = slope · raw_log_odds + intercept``, fitted
on the out-of-fold scores. An affine map of the log-odds keeps TreeSHAP additive: every
contribution scales by ``slope`` and the base value becomes ``slope · base + intercept``, so the
reasons still add up to the served log-odds. It is monotone, so it changes no ranking (AUC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from scipy import special, stats

from credit_scoring.artifacts import parse_json
from credit_scoring.errors import ArtifactError

EPS = 1e-15  # probabilities are clipped this far from 0 and 1 before taking their log-odds
NEWTON_STEPS = 100
HALVINGS = 30
TOLERANCE = 1e-13  # relative size of the last Newton step


def log_odds(p: npt.ArrayLike) -> np.ndarray:
    """The log-odds of probabilities, finite even at 0 and 1."""
    return special.logit(np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling on the log-odds; ``calibration.json`` in the model folder and the package."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, y: npt.ArrayLike, raw: npt.ArrayLike) -> Calibration:
        """Maximum-likelihood fit on labels and uncalibrated probabilities (no penalty).

        Newton's method on the two-parameter convex likelihood, halving a step that does not
        lower it. Every sum is ``math.fsum`` (correctly rounded) and the 2x2 system is solved
        in scalars: no BLAS kernel or SIMD reduction whose rounding varies from one CPU to
        another, so the parameters, and every probability after them, are the same bits on
        any machine (``dvc repro`` reproduces the lock).
        """
        y, z = np.asarray(y, dtype="float64"), log_odds(raw)

        def nll(slope: float, intercept: float) -> float:
            eta = slope * z + intercept
            return math.fsum(np.logaddexp(0, eta) - y * eta)

        slope, intercept = 1.0, 0.0
        loss = nll(slope, intercept)
        for _ in range(NEWTON_STEPS):
            p = special.expit(slope * z + intercept)
            residual, weight = p - y, p * (1 - p)
            g_slope, g_intercept = math.fsum(residual * z), math.fsum(residual)
            h_ss, h_si = math.fsum(weight * z * z), math.fsum(weight * z)
            h_ii = math.fsum(weight)
            det = h_ss * h_ii - h_si * h_si
            if not det > 0:
                raise ArtifactError(
                    "calibration: the out-of-fold scores are all equal (a flat model)"
                )
            step_slope = (h_ii * g_slope - h_si * g_intercept) / det
            step_intercept = (h_ss * g_intercept - h_si * g_slope) / det
            for _ in range(HALVINGS):
                candidate = nll(slope - step_slope, intercept - step_intercept)
                if candidate <= loss:
                    break
                step_slope, step_intercept = step_slope / 2, step_intercept / 2
            slope, intercept, loss = slope - step_slope, intercept - step_intercept, candidate
            if abs(step_slope) <= TOLERANCE * abs(slope) and abs(step_intercept) <= TOLERANCE * (
                1 + abs(intercept)
            ):
                return cls(slope=slope, intercept=intercept)
        raise ArtifactError(
            f"calibration: no maximum-likelihood fit in {NEWTON_STEPS} Newton steps (the"
            " out-of-fold scores separate the labels, or one label is missing)"
        )

    def calibrated_log_odds(self, raw_log_odds: npt.ArrayLike) -> np.ndarray:
        return self.slope * np.asarray(raw_log_odds, dtype="float64") + self.intercept

    def probability(self, raw: npt.ArrayLike) -> np.ndarray:
        """Calibrated probabilities of uncalibrated ones."""
        return special.expit(self.calibrated_log_odds(log_odds(raw)))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Calibration:
        return cls(slope=float(raw["slope"]), intercept=float(raw["intercept"]))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return parse_json(text, "calibration", cls.from_dict)


def predict_pd(
    booster: lgb.Booster, calibration: Calibration, rows: np.ndarray, threads: int = 0
) -> np.ndarray:
    """The served probability of default of feature rows: calibrated log-odds, then sigmoid.

    ``threads`` 0 lets LightGBM choose; the service asks for 1 (a request is a row or a few).
    """
    raw = booster.predict(rows, raw_score=True, num_threads=threads)
    return special.expit(calibration.calibrated_log_odds(raw))


def predict_contributions(
    booster: lgb.Booster, calibration: Calibration, rows: np.ndarray, threads: int = 0
) -> np.ndarray:
    """TreeSHAP contributions in calibrated log-odds (base value last), one row each.

    Platt scaling multiplies the log-odds by its slope and adds its intercept: so does each
    contribution, and the base absorbs the intercept, so base plus contributions is still the
    logit of :func:`predict_pd`.
    """
    scaled = booster.predict(rows, pred_contrib=True, num_threads=threads) * calibration.slope
    scaled[:, -1] += calibration.intercept
    return scaled


def _quantile_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count bins of the probabilities (ties kept together), as bin indices."""
    order = np.argsort(p, kind="stable")
    index = np.empty(p.size, dtype="int64")
    index[order] = np.arange(p.size) * bins // p.size
    return index


def calibration_report(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> dict[str, float]:
    """How well probabilities match outcomes: Brier, ECE, Hosmer-Lemeshow p, mean PD.

    The expected calibration error and the Hosmer-Lemeshow test use ``bins`` equal-count bins;
    the test has ``bins - 2`` degrees of freedom, as for a fitted model.
    """
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    index = _quantile_bins(p, bins)
    count = np.bincount(index, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    expected = np.bincount(index, weights=p, minlength=bins)
    used = count > 0
    gap = np.abs(observed[used] - expected[used]) / count[used]
    variance = expected[used] * (1 - expected[used] / count[used])
    hl = float(np.sum((observed[used] - expected[used]) ** 2 / np.maximum(variance, EPS)))
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(np.sum(gap * count[used]) / y.size),
        "hosmer_lemeshow_p": float(stats.chi2.sf(hl, df=max(int(used.sum()) - 2, 1))),
        "mean_pd": float(p.mean()),
        "default_rate": float(y.mean()),
    }


def calibration_table(
    y: npt.ArrayLike, raw: npt.ArrayLike, calibrated: npt.ArrayLike, bins: int = 20
) -> list[dict[str, float]]:
    """Per equal-count bin: the observed default rate, and the mean PD before and after.

    Calibration is monotone, so both sets of probabilities fall into the same bins; a
    calibrated model's points lie on the diagonal ``predicted == observed``.
    """
    y, raw, calibrated = (np.asarray(a, dtype="float64") for a in (y, raw, calibrated))
    index = _quantile_bins(raw, bins)
    count = np.bincount(index, minlength=bins)
    used = count > 0

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values, minlength=bins)[used] / count[used]

    return [
        {
            "observed": float(o),
            "uncalibrated": float(r),
            "calibrated": float(c),
            "diagonal": float(o),
        }
        for o, r, c in zip(mean(y), mean(raw), mean(calibrated), strict=True)
    ]
