"""The Compare tab: an applicant's key values against the approved and refused populations.

Days before the application are shown as years, and each group as the cumulative share at or
below a value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from credit_scoring.ui.figures import LOWERS, RAISES, apply_style
from credit_scoring.ui.formatting import DAYS_PER_YEAR, format_value, sentence


def _in_years(name: str) -> bool:
    return name.startswith("DAYS_")


def _compare_label(name: str, description: str) -> str:
    if name == "DAYS_BIRTH":
        return "Age (years)"
    if name == "DAYS_EMPLOYED":
        return "Years in current employment"
    if _in_years(name):
        return f"{sentence(description)}, in years"
    return sentence(description)


def _shown_value(name: str, value: Any) -> float | None:
    """A value in the units shown: days before the application become years."""
    if value is None or isinstance(value, str):
        return None
    return -float(value) / DAYS_PER_YEAR if _in_years(name) else float(value)


def cumulative(name: str, dist: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bin edges (in the units shown) and each group's share at or below every edge.

    Cumulative shares rather than per-bin ones: the service's bins are quantiles, some very
    narrow (incomes cluster at round numbers), which makes per-bin shares spiky to read.
    """
    edges = np.asarray(dist["edges"], dtype=float)
    shares = {g: np.asarray(dist[g], dtype=float) for g in ("approved", "refused")}
    if _in_years(name):  # more days before the application is fewer years: reverse the bins
        edges = -edges[::-1] / DAYS_PER_YEAR
        shares = {g: s[::-1] for g, s in shares.items()}
    return edges, {g: np.concatenate([[0.0], np.cumsum(s)]) for g, s in shares.items()}


def compare_figure(
    population: Mapping[str, Any], values: Mapping[str, Any], descriptions: Mapping[str, str]
) -> go.Figure:
    """Small multiples: approved and refused training applicants' distributions, and this one."""
    names = [n for n in population if len(population[n].get("edges", ())) > 1]
    cols = max(1, min(5, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    titles = [_compare_label(n, descriptions.get(n, n)) for n in names]
    fig = make_subplots(rows, cols, subplot_titles=titles, vertical_spacing=0.22)
    for i, name in enumerate(names):
        where = {"row": i // cols + 1, "col": i % cols + 1}
        edges, cdf = cumulative(name, population[name])
        for group, colour in (("approved", LOWERS), ("refused", RAISES)):
            fig.add_trace(
                go.Scatter(
                    x=edges,
                    y=cdf[group],
                    mode="lines",
                    line={"color": colour, "width": 2},
                    name=group,
                    legendgroup=group,
                    showlegend=i == 0,
                    hovertemplate=f"{group}: %{{y:.0%}} at or below %{{x:,.3~g}}<extra></extra>",
                ),
                **where,
            )
        value = _shown_value(name, values.get(name))
        if value is not None:
            x = float(np.clip(value, edges[0], edges[-1]))
            fig.add_trace(
                go.Scatter(
                    x=[x, x],
                    y=[0, 1],
                    mode="lines",
                    line={"color": "black", "width": 3},
                    name="this applicant",
                    legendgroup="applicant",
                    showlegend=i == 0,
                    hovertemplate=f"this applicant: {format_value(_round(value))}<extra></extra>",
                ),
                **where,
            )
        if name.startswith("AMT_"):
            fig.update_xaxes(tickformat="~s", **where)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], gridcolor="#eee")
    fig.update_xaxes(nticks=5, gridcolor="#eee")
    fig.update_annotations(font_size=12)
    return apply_style(
        fig,
        "Share of training applicants at or below each value: approved, refused, this applicant",
        300 * rows + 90,
        showlegend=True,
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.08, "yanchor": "bottom"},
        margin={"l": 10, "r": 20, "t": 90, "b": 10},
    )


def compare_markdown(
    population: Mapping[str, Any], values: Mapping[str, Any], descriptions: Mapping[str, str]
) -> str:
    """The key values beside each group's median, and the share of each group below them."""
    lines = []
    for name, dist in population.items():
        value = _shown_value(name, values.get(name))
        cells = [_compare_label(name, descriptions.get(name, name)), f"**{_shown(value)}**"]
        edges, cdf = cumulative(name, dist) if len(dist.get("edges", ())) > 1 else ([], {})
        for group in ("approved", "refused"):
            cells.append(_shown(_shown_value(name, dist.get(f"{group}_median"))))
            below = None if value is None or not cdf else np.interp(value, edges, cdf[group])
            cells.append("" if below is None else f"{below:.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    head = (
        "| field | this applicant | approved: median | approved: share below | refused: median "
        "| refused: share below |\n|---|---|---|---|---|---|\n"
    )
    note = (
        "\n\nApproved and refused: the training applicants the model approves or refuses at the "
        "threshold (out-of-fold scores)."
    )
    return head + "\n".join(lines) + note


def _shown(value: float | None) -> str:
    return format_value(_round(value))


def _round(value: Any) -> Any:
    if isinstance(value, float) and abs(value) < 1000:
        return float(f"{value:.3g}")
    return value
