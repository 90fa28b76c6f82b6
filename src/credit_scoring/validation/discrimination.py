"""How well the scores separate defaulters from good payers: Gini, KS and bootstrap intervals.

Both statistics are computed exactly from the defaulters and good payers at each distinct score,
one sort, so tied scores are handled as they should be and the bootstrap can afford hundreds of
resamples of a full hold-out set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from credit_scoring.modelling.scores import both_classes, checked_scores


@dataclass(frozen=True)
class KS:
    """The Kolmogorov-Smirnov separation of the scores, and the score where it is reached.

    ``statistic`` is the largest gap ``|F_bad(s) - F_good(s)|`` between the shares of defaulters
    and of good payers scoring at most ``s``. ``at`` is the smallest score where that gap is
    reached: approving ``p <= at`` and refusing above it is the cut that separates the classes
    most (as a threshold for "refuse when p >= threshold", the next distinct score above ``at``).
    """

    statistic: float
    at: float


def _tallies(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct scores ascending, with the defaulters and good payers at each."""
    if not np.all(p[:-1] <= p[1:]):  # the bootstrap's resamples arrive sorted
        order = np.argsort(p, kind="stable")
        y, p = y[order], p[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    bad = np.add.reduceat(y, starts)
    good = np.diff(np.r_[starts, p.size]) - bad
    return p[starts], bad, good


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    # Mann-Whitney: each (defaulter, good payer) pair counts 1 if the defaulter scores higher,
    # 1/2 on a tie; the same value as sklearn's roc_auc_score, without its per-call overhead.
    _, bad, good = _tallies(y, p)
    good_below = np.cumsum(good) - good
    return float(np.sum(bad * (good_below + good / 2)) / (bad.sum() * good.sum()))


def _gini(y: np.ndarray, p: np.ndarray) -> float:
    return 2 * _auc(y, p) - 1


def _ks(y: np.ndarray, p: np.ndarray) -> KS:
    scores, bad, good = _tallies(y, p)
    n_bad, n_good = int(bad.sum()), int(good.sum())
    # The gap scaled by n_bad * n_good is an integer: equal gaps compare equal, so the first
    # maximum is truly the smallest score reaching it.
    gap = np.abs(np.cumsum(bad) * n_good - np.cumsum(good) * n_bad)
    best = int(np.argmax(gap))
    return KS(statistic=float(gap[best] / (n_bad * n_good)), at=float(scores[best]))


def _ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    return _ks(y, p).statistic


def gini(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """The Gini coefficient, ``2 * AUC - 1``: 0 for a random ranking, 1 for a perfect one.

    Equal to ``2 * sklearn.metrics.roc_auc_score(y, p) - 1`` (ties count one half), computed from
    the tallies at each distinct score so the bootstrap stays fast.

    Raises:
        SchemaError: on mismatched lengths, no applicants, labels other than 0/1, probabilities
            missing or outside [0, 1], or when one class is absent.
    """
    y, p = checked_scores(y, p)
    both_classes(y)
    return _gini(y, p)


def ks(y: npt.ArrayLike, p: npt.ArrayLike) -> KS:
    """The Kolmogorov-Smirnov statistic and the score where it is reached (see :class:`KS`).

    Evaluated at every distinct score, where the empirical distributions step, so it is exact.

    Raises:
        SchemaError: as :func:`gini`.
    """
    y, p = checked_scores(y, p)
    both_classes(y)
    return _ks(y, p)


def bootstrap_interval(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    n: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic(y, p)``, reproducible from ``seed``.

    Applicants are resampled with replacement within each class, so every resample keeps the
    sample's defaulters and good payers: a statistic comparing the two is always defined, and
    the interval reflects the uncertainty of the ranking rather than of the default rate. Each
    resample reaches ``statistic`` sorted by ``p`` (a statistic must not depend on row order),
    which makes the sorts inside it near linear.

    Raises:
        SchemaError: as :func:`gini`.
        ValueError: for ``n < 1`` or ``level`` outside (0, 1).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y, p = checked_scores(y, p)
    both_classes(y)
    order = np.argsort(p, kind="stable")
    y, p = y[order], p[order]
    rows = np.arange(y.size)
    strata = [np.flatnonzero(y == label) for label in (0, 1)]
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        draws = sum(
            np.bincount(stratum[rng.integers(0, stratum.size, stratum.size)], minlength=y.size)
            for stratum in strata
        )
        resample = np.repeat(rows, draws)  # rows ascending, hence p ascending
        values[i] = statistic(y[resample], p[resample])
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def discrimination(
    y: npt.ArrayLike, p: npt.ArrayLike, *, n_boot: int, seed: int
) -> dict[str, float]:
    """Gini, KS and AUC of one scored set, with 95% bootstrap intervals for Gini and KS.

    Both intervals use the same seed, hence the same resamples, so they describe the same
    uncertainty. The keys are ``gini, gini_low, gini_high, ks, ks_at, ks_low, ks_high, auc``.

    Raises:
        SchemaError: as :func:`gini`.
    """
    y, p = checked_scores(y, p)
    both_classes(y)
    separation = _ks(y, p)
    auc = _auc(y, p)
    gini_low, gini_high = bootstrap_interval(y, p, _gini, n=n_boot, seed=seed)
    ks_low, ks_high = bootstrap_interval(y, p, _ks_statistic, n=n_boot, seed=seed)
    return {
        "gini": 2 * auc - 1,
        "gini_low": gini_low,
        "gini_high": gini_high,
        "ks": separation.statistic,
        "ks_at": separation.at,
        "ks_low": ks_low,
        "ks_high": ks_high,
        "auc": auc,
    }
