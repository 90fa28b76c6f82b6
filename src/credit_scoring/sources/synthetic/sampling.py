"""Draw columns with the genuine marginals, co-missingness and a chosen lean on latent risk.

Every column is drawn through a uniform ``u`` and the inverse of its empirical CDF (quantiles,
a discrete distribution, or category frequencies from ``profile.json``). Making ``u`` a
Gaussian copula of a latent risk ``z``, ``u = Phi(rho * z + sqrt(1 - rho**2) * noise)``, lets
a column carry signal about default while keeping its marginal exactly the genuine one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from credit_scoring.contract.tables import CATEGORY, DAYS_PLACEHOLDER, INT, Table


@cache
def load_profile() -> dict:
    """The packaged generator statistics, read once per process."""
    text = resources.files("credit_scoring.contract").joinpath("profile.json").read_text()
    return json.loads(text)


@dataclass(frozen=True)
class Lean:
    """How a column leans on a latent: ``rho`` > 0 puts high values (or late levels) on high z."""

    latent: str
    rho: float


@dataclass
class Draws:
    """The uniforms of one table: one stream per shared key, so related columns move together."""

    rng: np.random.Generator
    n: int
    latents: Mapping[str, np.ndarray] = field(default_factory=dict)
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def uniform(self, key: str, lean: Lean | None = None) -> np.ndarray:
        cache_key = f"{key}|{lean}"
        if cache_key not in self._cache:
            if lean is None or lean.rho == 0:
                self._cache[cache_key] = self.rng.random(self.n)
            else:
                noise = self.rng.standard_normal(self.n)
                z = self.latents[lean.latent]
                self._cache[cache_key] = ndtr(lean.rho * z + np.sqrt(1 - lean.rho**2) * noise)
        return self._cache[cache_key]


def share_key(name: str) -> str:
    """Columns describing one thing share a uniform: APARTMENTS_AVG/_MODE/_MEDI, OBS_30/OBS_60."""
    key = re.sub(r"_(AVG|MODE|MEDI)$", "", name)
    key = re.sub(r"_(30|60)_", "_N_", key)
    return key.removesuffix("_W_CITY")


def numeric_from_uniform(stats: Mapping, u: np.ndarray) -> np.ndarray:
    """Invert the column's empirical CDF (sentinels and missing values excluded)."""
    if "quantiles" in stats:
        grid = np.linspace(0.0, 1.0, len(stats["quantiles"]))
        return np.interp(u, grid, stats["quantiles"])
    cdf = np.cumsum(stats["probs"])
    idx = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(cdf) - 1)
    return np.asarray(stats["values"], dtype="float64")[idx]


def ratio_from_uniform(quantiles: Sequence[float], u: np.ndarray) -> np.ndarray:
    """Draw a ratio between two amounts from its genuine quantiles."""
    return np.interp(u, np.linspace(0.0, 1.0, len(quantiles)), quantiles)


def codes_from_uniform(
    stats: Mapping, levels: Sequence[str], u: np.ndarray, order: Sequence[str] | None = None
) -> np.ndarray:
    """Map uniforms to category codes of ``levels``; ``order`` sets which levels high u picks."""
    freq = stats["levels"]
    ranked = [lv for lv in (order or levels) if lv in freq]
    ranked += [lv for lv in levels if lv in freq and lv not in ranked]
    cdf = np.cumsum([freq[lv] for lv in ranked])
    idx = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(ranked) - 1)
    position = {lv: i for i, lv in enumerate(levels)}
    return np.array([position[lv] for lv in ranked], dtype="int16")[idx]


def draw_values(stats: Mapping, u: np.ndarray, sentinel_u: np.ndarray) -> np.ndarray:
    """A numeric column without its missing values: marginal draws plus the 365243 placeholder."""
    values = numeric_from_uniform(stats, u)
    if stats.get("integral"):
        values = np.round(values)
    if "sentinel" in stats:
        rate = stats["sentinel"] / max(1e-12, 1.0 - stats["missing"])
        values[sentinel_u < rate] = DAYS_PLACEHOLDER
    return values


def draw_table(
    table: Table,
    stats: Mapping[str, Mapping],
    draws: Draws,
    leans: Mapping[str, Lean] | None = None,
    orders: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Draw every column of ``table`` from its marginal: floats (NaN missing) or category codes.

    Columns of one missing group go missing together through one uniform per row, nested by
    their rates, which is how the genuine building-information block behaves.
    """
    leans, orders = leans or {}, orders or {}
    out: dict[str, np.ndarray] = {}
    for col in table.columns:
        s = stats[col.name]
        u = draws.uniform(share_key(col.name), leans.get(col.name))
        if col.dtype == CATEGORY:
            values = codes_from_uniform(s, col.levels, u, orders.get(col.name)).astype("float64")
        else:
            values = draw_values(s, u, draws.uniform(f"{col.name}|sentinel"))
            if col.dtype == INT:
                values = np.round(values)
        if s["missing"] > 0:
            group = s.get("missing_group", col.name)
            values[draws.uniform(f"missing|{group}") < s["missing"]] = np.nan
        out[col.name] = values
    return out


def calibrated_probability(score: np.ndarray, rate: float) -> np.ndarray:
    """``expit(a + score)`` with the intercept ``a`` solved so that the mean equals ``rate``."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(mid + score).mean() < rate else (lo, mid)
    return expit((lo + hi) / 2 + score)


def to_frame(table: Table, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Assemble drawn columns into the contract's column order and dtypes."""
    data = {}
    for col in table.columns:
        values = columns[col.name]
        if col.dtype == CATEGORY:
            codes = np.where(np.isnan(values), -1, values).astype("int16")
            data[col.name] = pd.Categorical.from_codes(codes, categories=list(col.levels))
        elif col.dtype == INT:
            data[col.name] = np.rint(values).astype("int64")
        else:
            data[col.name] = values.astype("float64")
    return pd.DataFrame(data)


def keep_missing(values: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Structural values, but missing where the marginal draw made the column missing."""
    return np.where(np.isnan(drawn), np.nan, values)


def group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For children laid out parent by parent, each row's parent index and rank within it."""
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(parent)) - np.repeat(starts, counts)
    return parent, rank


def draw_counts(distribution: Mapping, u: np.ndarray) -> np.ndarray:
    """Children per parent from an empirical count distribution (zeros included)."""
    return numeric_from_uniform(distribution, u).astype("int64")
