"""The plotly figures of the screen: the score's gauge and drivers, the model's cost and importance.

Plotly: the server sends a figure as JSON and the browser draws it (plotly.js ships with
Gradio), which keeps a score fast and lets a person hover for the exact numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from credit_scoring.ui.formatting import format_value, percent, points, policy_name, sentence

TOP_K = 10  # contributions drawn; the rest are summed into one bar
RAISES, LOWERS, NEUTRAL, INK = "#c0392b", "#1e8449", "#95a5a6", "#2c3e50"
GRADE_SCALE = "RdYlGn_r"  # the risk grades from green (A, safest) to red, however many there are


def apply_style(fig: go.Figure, title: str, height: int, **extra: Any) -> go.Figure:
    """One look for every figure: title at the left, white ground, tight margins."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 10, "r": 20, "t": 45, "b": 10},
        font={"family": "ui-sans-serif, system-ui, sans-serif", "size": 12},
        plot_bgcolor="white",
        showlegend=False,
    )
    fig.update_layout(**extra)
    return fig


def gauge_figure(
    probability: float,
    threshold: float,
    bands: Mapping[str, Any],
    before: float | None = None,
    *,
    score: float,
    cutoff_score: float,
) -> go.Figure:
    """The probability as a bar across the risk bands, the threshold marked (and any change).

    The bar and the threshold are labelled in points too: ``score`` and ``cutoff_score``.
    """
    edges, labels = list(bands["edges"]), list(bands["labels"])
    top = min(1.0, max(edges[-1] * 1.6, probability * 1.2, (before or 0) * 1.2))
    spans = [(lo, min(hi, top)) for lo, hi in pairwise([0.0, *edges, top]) if lo < top]
    fig = go.Figure(
        go.Bar(
            x=[probability],
            y=[""],
            orientation="h",
            width=0.3,
            marker_color=INK,
            text=[f"<b>{percent(probability)}</b> · {points(score)}"],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="probability of default %{x:.2%}<extra></extra>",
        )
    )
    colours = sample_colorscale(
        GRADE_SCALE, [i / max(len(labels) - 1, 1) for i in range(len(labels))]
    )
    for (lo, hi), label, colour in zip(spans, labels, colours, strict=False):
        fig.add_vrect(x0=lo, x1=hi, fillcolor=colour, opacity=0.35, line_width=0, layer="below")
        fig.add_annotation(x=(lo + hi) / 2, y=0.97, yanchor="top", text=label)
    fig.add_vline(x=threshold, line={"color": "black", "width": 3})
    fig.add_annotation(
        x=threshold,
        y=1.0,
        yanchor="bottom",
        text=f"threshold {percent(threshold)} · cut-off {points(cutoff_score)}",
    )
    if before is not None:
        fig.add_vline(x=before, line={"color": INK, "width": 2, "dash": "dot"})
        fig.add_annotation(x=before, y=0.03, yanchor="bottom", text=f"before {percent(before)}")
    fig.update_annotations(yref="paper", showarrow=False, font_size=11)
    fig.update_xaxes(range=[0, top], tickformat=".0%" if top > 0.2 else ".1%", showgrid=False)
    fig.update_yaxes(visible=False)
    return apply_style(
        fig, "Probability of default", 190, margin={"l": 10, "r": 40, "t": 60, "b": 10}
    )


def contributions_figure(explanation: Mapping[str, Any], top_k: int = TOP_K) -> go.Figure:
    """The strongest contributions as bars with plain-language labels; the rest summed.

    The bars are in log-odds; hovering one gives it in points too.
    """
    items = sorted(explanation["contributions"], key=lambda c: -abs(c["contribution"]))
    shown, rest = items[:top_k], items[top_k:]
    other = explanation["other_contribution"] + sum(c["contribution"] for c in rest)
    other_points = explanation["other_points"] + sum(c["points"] for c in rest)
    labels = [f"{sentence(c['description'])} = {format_value(c['value'])}" for c in shown]
    values = [c["contribution"] for c in shown] + [other]
    colours = [RAISES if v > 0 else LOWERS for v in values[:-1]] + [NEUTRAL]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[*labels, "all other features"],
            orientation="h",
            marker_color=colours,
            text=[f"{v:+.2f}" for v in values],
            customdata=[c["points"] for c in shown] + [other_points],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:+.3f} log-odds, %{customdata:+.1f} points<extra></extra>",
        )
    )
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0  # and room for the numbers beside the bars
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(
        range=[low - 0.18 * span * (low < 0), high + 0.15 * span],
        title="contribution to the log-odds of default",
        zeroline=True,
        zerolinecolor="black",
        gridcolor="#eee",
    )
    title = "What drives this score: red raises the risk, green lowers it"
    return apply_style(fig, title, 26 * len(values) + 110)


def cost_figure(info: Mapping[str, Any]) -> go.Figure:
    """Cost per applicant against the threshold, with the chosen one and the trivial policies."""
    curve = info["cost_curve"]
    fig = go.Figure(
        go.Scatter(
            x=[p["threshold"] for p in curve],
            y=[p["cost_per_applicant"] for p in curve],
            line={"color": INK, "width": 2},
            hovertemplate="threshold %{x:.4f}: %{y:.4f} per applicant<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[info["threshold"]],
            y=[info["cost_per_applicant"]],
            mode="markers+text",
            marker={"color": RAISES, "size": 10},
            text=[f"threshold {info['threshold']:.4f}: {info['cost_per_applicant']:.4f}"],
            textposition="bottom right",
            hoverinfo="skip",
        )
    )
    for key, cost in info.get("policies", {}).items():
        if key.startswith(("approve", "refuse")):
            fig.add_hline(
                y=cost,
                line={"color": NEUTRAL, "dash": "dot"},
                annotation_text=f"{policy_name(key)}: {cost:.4f}",
                annotation_position="top left",
            )
    ticks = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    fig.update_xaxes(
        type="log",
        tickvals=ticks,
        ticktext=[f"{t:g}" for t in ticks],
        title="threshold: refuse at or above this probability (log scale)",
        gridcolor="#eee",
    )
    fig.update_yaxes(title="cost per applicant", gridcolor="#eee")
    return apply_style(fig, "Cost per applicant against the threshold (out-of-fold)", 420)


def importance_figure(info: Mapping[str, Any], top: int = 20) -> go.Figure:
    """The model's global importance (total gain), strongest at the top, named in words."""
    items = info["importance"][:top]
    fig = go.Figure(
        go.Bar(
            x=[i["gain"] for i in items],
            y=[sentence(i["description"]) for i in items],
            customdata=[i["feature"] for i in items],
            orientation="h",
            marker_color=INK,
            hovertemplate="%{y} (%{customdata}): gain %{x:,.0f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title="total gain", gridcolor="#eee")
    return apply_style(fig, f"Global feature importance (top {len(items)})", 24 * len(items) + 110)
