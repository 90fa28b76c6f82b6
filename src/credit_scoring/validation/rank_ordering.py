"""Whether risk rises band by band: default rates, capture and lift, and the Jeffreys test.

A model can separate defaulters well overall and still misorder a stretch of its scale, or
promise probabilities of default its bands do not deliver. These tables show both, one row per
band from the lowest risk to the highest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from credit_scoring.contract.tables import SchemaError
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.modelling.scores import (
    checked_probabilities,
    checked_scores,
    one_per_applicant,
    same_length,
)

BAND = "band"
DECILES = 10


def band_table(
    y: npt.ArrayLike, p: npt.ArrayLike, bands: np.ndarray, order: Sequence[str]
) -> pd.DataFrame:
    """Applicants, defaults, default rate and mean PD per band, with capture and lift.

    ``captured`` is the share of all defaults in this band and every riskier one: what refusing
    from this band up would catch. ``lift`` is the band's default rate over the overall rate.
    Every band of ``order`` (lowest risk first) gets a row; an empty band has 0 applicants and
    NaN rates, so a band the scores never reach stays visible.

    Raises:
        SchemaError: on bad scores, a band per applicant of another length, or a band label
            outside ``order``.
    """
    y, p = checked_scores(y, p)
    bands = one_per_applicant(bands, "scores", BAND)
    same_length("scores", **{PROBABILITY: p, BAND: bands})
    order = list(order)
    if len(set(order)) != len(order):
        raise ValueError(f"band labels repeat in {order}")
    position = pd.Categorical(bands, categories=order).codes
    unknown = position < 0
    if unknown.any():
        raise SchemaError(
            "scores", BAND, f"labels outside {order}: {sorted(map(str, set(bands[unknown])))}"
        )
    applicants = np.bincount(position, minlength=len(order))
    defaults = np.bincount(position, weights=y, minlength=len(order)).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        default_rate = defaults / applicants
        mean_pd = np.bincount(position, weights=p, minlength=len(order)) / applicants
        captured = np.cumsum(defaults[::-1])[::-1] / defaults.sum()
        lift = default_rate / y.mean()
    return pd.DataFrame(
        {
            BAND: order,
            "applicants": applicants,
            "defaults": defaults,
            "default_rate": default_rate,
            "mean_pd": mean_pd,
            "captured": captured,
            "lift": lift,
        }
    )


def deciles(p: npt.ArrayLike) -> tuple[np.ndarray, list[str]]:
    """Each applicant's risk decile by its own set's scores, "1" lowest risk to "10" highest.

    An applicant's decile comes from the share of applicants scoring strictly lower, so equal
    scores always share a decile and the result does not depend on row order. Without ties the
    deciles hold equal counts (within one); a score shared by more than a tenth of the set
    fills a larger decile and can leave the next one empty. Returns the labels and their order.

    Raises:
        SchemaError: if a probability is missing, infinite or outside [0, 1].
    """
    p = checked_probabilities(p)
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    below = (np.cumsum(counts) - counts)[inverse.ravel()]
    order = [str(d) for d in range(1, DECILES + 1)]
    return np.asarray(order)[below * DECILES // p.size], order


def inversions(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Adjacent bands (lower, higher) where the default rate does not rise, empty bands skipped.

    Each pair is a place where the score ranks applicants the wrong way round (or not at all).
    """
    filled = table[table["applicants"] > 0]
    rates, labels = filled["default_rate"].to_numpy(), filled[BAND].astype(str).tolist()
    return [(labels[i], labels[i + 1]) for i in range(len(labels) - 1) if rates[i + 1] <= rates[i]]


def jeffreys_test(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The band table with each default rate's Jeffreys interval and whether the mean PD is in it.

    The interval holds the quantiles of Beta(d + 1/2, n - d + 1/2), with low = 0 when d = 0 and
    high = 1 when d = n; it stays sensible for the few defaults of a low-risk band, where the
    normal approximation fails. ``passes`` means the band's mean PD is inside: the calibrated
    probabilities agree with the defaults observed. An empty band has no interval (NaN) and,
    with nothing to contradict it, passes.
    """
    n = table["applicants"].to_numpy(dtype="float64")
    d = table["defaults"].to_numpy(dtype="float64")
    low = stats.beta.ppf((1 - level) / 2, d + 0.5, n - d + 0.5)
    high = stats.beta.ppf((1 + level) / 2, d + 0.5, n - d + 0.5)
    filled = n > 0
    low = np.where(filled & (d == 0), 0.0, np.where(filled, low, np.nan))
    high = np.where(filled & (d == n), 1.0, np.where(filled, high, np.nan))
    mean_pd = table["mean_pd"].to_numpy()
    passes = ~filled | ((low <= mean_pd) & (mean_pd <= high))
    return table.assign(low=low, high=high, passes=passes)
