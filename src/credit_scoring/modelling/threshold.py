"""The business cost of a decision threshold, the threshold that minimises it, and risk bands.

What is chosen here is a :class:`~credit_scoring.modelling.decision.ThresholdDecision`, the
artifact the service reads.

The rule is "refuse when probability >= threshold". Refusing a defaulter is a true positive,
approving one a false negative (it costs ``cost_fn``), refusing a good payer a false positive (it
costs ``cost_fp``). The threshold is chosen on out-of-fold scores, so it is not fitted to the
scores the model saw in training.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from credit_scoring.contract.tables import TARGET, SchemaError
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.modelling.decision import (
    APPROVE_ALL,
    POLICIES,
    CostReport,
    ReferBand,
    RiskBands,
    ThresholdDecision,
)
from credit_scoring.modelling.scores import checked_scores


def oof_scores(frame: pd.DataFrame, name: str = "oof") -> tuple[np.ndarray, np.ndarray]:
    """The labels and out-of-fold probabilities of a predictions table, checked.

    Raises:
        SchemaError: ``name.column: problem`` for an empty table, a missing column, a label
            other than 0/1, or a probability that is missing, infinite or outside [0, 1].
    """
    if frame.empty:
        raise SchemaError(name, None, "the table is empty")
    missing = [c for c in (TARGET, PROBABILITY) if c not in frame.columns]
    if missing:
        raise SchemaError(name, missing[0], f"missing column(s) {missing}")
    return checked_scores(frame[TARGET], frame[PROBABILITY], name)


def _report(
    threshold: float, tn: int, fp: int, fn: int, tp: int, cost_fn: float, cost_fp: float
) -> CostReport:
    cost = float(cost_fn * fn + cost_fp * fp)
    return CostReport(
        threshold=float(threshold),
        tn=int(tn),
        fp=int(fp),
        fn=int(fn),
        tp=int(tp),
        cost=cost,
        cost_per_applicant=cost / (tn + fp + fn + tp),
    )


def decision_cost(
    y: npt.ArrayLike, p: npt.ArrayLike, threshold: float, cost_fn: float, cost_fp: float
) -> CostReport:
    """The cost of refusing every applicant whose probability is at least ``threshold``."""
    y, p = checked_scores(y, p)
    refused = p >= threshold
    tp = int(np.sum(refused & (y == 1)))
    fp = int(np.sum(refused)) - tp
    fn = int(np.sum(y)) - tp
    return _report(threshold, y.size - tp - fp - fn, fp, fn, tp, cost_fn, cost_fp)


def policy_costs(
    y: npt.ArrayLike, p: npt.ArrayLike, cost_fn: float, cost_fp: float
) -> dict[str, CostReport]:
    """The costs of the policies a chosen threshold must beat: approve all, refuse all, 0.5."""
    return {
        name: decision_cost(y, p, threshold, cost_fn, cost_fp)
        for name, threshold in POLICIES.items()
    }


def cost_curve(y: npt.ArrayLike, p: npt.ArrayLike, cost_fn: float, cost_fp: float) -> pd.DataFrame:
    """The exact cost at every candidate threshold, in O(n log n).

    The candidates are every distinct score (applicants with equal scores always get the same
    decision) plus :data:`APPROVE_ALL`; between two candidates the decisions, hence the cost,
    do not change, so no threshold can do better than the best candidate. One row per
    candidate, thresholds ascending, with the columns of :class:`CostReport`.
    """
    y, p = checked_scores(y, p)
    scores, inverse = np.unique(p, return_inverse=True)
    applicants = np.bincount(inverse, minlength=scores.size)
    defaults = np.bincount(inverse[y == 1], minlength=scores.size)
    # Refusing p >= scores[j] refuses every applicant from j on: suffix sums, then "no one".
    refused = np.append(np.cumsum(applicants[::-1])[::-1], 0)
    tp = np.append(np.cumsum(defaults[::-1])[::-1], 0)
    fp = refused - tp
    fn = int(y.sum()) - tp
    cost = cost_fn * fn + cost_fp * fp
    return pd.DataFrame(
        {
            "threshold": np.append(scores, APPROVE_ALL),
            "tn": (y.size - int(y.sum())) - fp,
            "fp": fp,
            "fn": fn,
            "tp": tp,
            "cost": cost.astype("float64"),
            "cost_per_applicant": cost / y.size,
        }
    )


def _best_row(curve: pd.DataFrame) -> int:
    """The cheapest row; on a tie, the highest threshold, which refuses the fewest applicants."""
    cost = curve["cost"].to_numpy()
    return int(np.flatnonzero(cost == cost.min())[-1])


def best_threshold(
    y: npt.ArrayLike, p: npt.ArrayLike, cost_fn: float, cost_fp: float
) -> CostReport:
    """The threshold that minimises ``cost_fn * FN + cost_fp * FP``, searched exactly.

    Every distinct score is a candidate, plus "refuse no one" (:data:`APPROVE_ALL`), so the
    optimum is not limited by a grid's resolution. Between thresholds of equal cost the
    highest wins: at the same cost, the bank serves more customers.
    """
    curve = cost_curve(y, p, cost_fn, cost_fp)
    row = curve.iloc[_best_row(curve)]
    counts = {k: int(row[k]) for k in ("tn", "fp", "fn", "tp")}
    return _report(float(row["threshold"]), **counts, cost_fn=cost_fn, cost_fp=cost_fp)


def thin_curve(curve: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """At most ``max_points`` rows of a cost curve for plotting, always including the optimum.

    Rows are kept evenly in rank, not in threshold: on real data most scores sit below 0.2, and
    equal rank steps put the points where the applicants (and the cost changes) are. The
    values kept are exact; only the resolution between them is lost.
    """
    keep = np.unique(
        np.append(np.linspace(0, len(curve) - 1, max_points - 1).round(), _best_row(curve))
    )
    return curve.iloc[keep.astype("int64")].reset_index(drop=True)


def _grade_labels(n: int) -> tuple[str, ...]:
    """A, B, C, ...: the letters of a master scale, safest first."""
    return tuple(chr(ord("A") + i) for i in range(n))


def _pool(counts: np.ndarray, defaults: np.ndarray, fixed: int) -> list[int]:
    """The indices of the edges kept after pooling bins whose default rate does not rise.

    Bin ``i`` lies between edge ``i - 1`` and edge ``i``; edge ``fixed`` is never removed, so
    pooling runs on each side of it separately. Empty bins are pooled into a neighbour.
    """
    blocks = [[i] for i in range(counts.size)]  # the bins of each pooled block, in order

    def violates(j: int) -> bool:
        """Blocks j and j+1 must pool: one is empty, or the rate does not rise across them."""
        below, above = counts[blocks[j]].sum(), counts[blocks[j + 1]].sum()
        if below == 0 or above == 0:
            return True
        return defaults[blocks[j + 1]].sum() / above <= defaults[blocks[j]].sum() / below

    j = 0
    while j < len(blocks) - 1:
        # The edge between blocks j and j+1 is the edge after block j's last bin.
        if blocks[j][-1] != fixed and violates(j):
            blocks[j : j + 2] = [blocks[j] + blocks[j + 1]]
            j = max(j - 1, 0)  # pooling can break the order with the block before
        else:
            j += 1
    return [block[-1] for block in blocks[:-1]]


def derive_bands(y: npt.ArrayLike, p: npt.ArrayLike, threshold: float, grades: int) -> RiskBands:
    """Grades whose observed default rates rise strictly, from ``grades`` equal-count bins.

    Start from the equal-count bins of ``p`` (its quantiles) plus the threshold as an edge;
    then, on each side of the threshold, pool adjacent bins whose observed default rate
    does not rise (pool-adjacent-violators), until every grade is riskier than the one
    before. The threshold edge is never pooled away.
    """
    y, p = checked_scores(y, p)
    cuts = np.quantile(p, np.arange(1, grades) / grades, method="inverted_cdf")
    t = min(threshold, 1.0)  # APPROVE_ALL refuses no one: no grade above it
    edges = np.unique(np.append(cuts[(cuts > p.min()) & (cuts <= p.max())], t))
    edges = edges[edges > 0]
    index = np.searchsorted(edges, p, side="right")
    counts = np.bincount(index, minlength=edges.size + 1).astype("float64")
    defaults = np.bincount(index, weights=y, minlength=edges.size + 1)
    fixed = int(np.flatnonzero(edges == t)[0]) if t in edges else -1
    kept = edges[_pool(counts, defaults, fixed=fixed)]
    return RiskBands(edges=tuple(map(float, kept)), labels=_grade_labels(kept.size + 1))


def choose_threshold(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    cost_fn: float,
    cost_fp: float,
    grades: int,
    refer_odds: float = 1.0,
) -> ThresholdDecision:
    """The cheapest threshold on these scores, with the policies and risk grades beside it.

    ``grades`` is the number of equal-count bins the grades are pooled from
    (:func:`derive_bands`); ``refer_odds`` the width of the band referred to an
    officer (:class:`ReferBand`; 1, none).
    """
    y, p = checked_scores(y, p)
    chosen = best_threshold(y, p, cost_fn=cost_fn, cost_fp=cost_fp)
    return ThresholdDecision(
        chosen=chosen,
        cost_fn=cost_fn,
        cost_fp=cost_fp,
        applicants=int(y.size),
        default_rate=float(y.mean()),
        policies=policy_costs(y, p, cost_fn=cost_fn, cost_fp=cost_fp),
        bands=derive_bands(y, p, chosen.threshold, grades),
        refer=ReferBand.around(chosen.threshold, refer_odds),
    )
