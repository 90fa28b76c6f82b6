"""The Drift tab: the drift stage's summary in a few lines, and the columns nearest to drifting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from credit_scoring.ui.formatting import format_value, percent


def read_drift(path: Path) -> tuple[str, pd.DataFrame]:
    """The summary written by the drift stage, with a link to its full report beside it.

    A missing or unreadable summary is a message on the tab, not a failure of the page.
    """
    if not path.is_file():
        return (
            f"No drift report at `{path}`: `make repro` or `dvc pull` brings one "
            "(or set CREDIT_SCORING_DRIFT_JSON).",
            pd.DataFrame(),
        )
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return (f"### ⚠ The drift report `{path}` is not readable\n\n{err}", pd.DataFrame())
    html = path.with_suffix(".html")
    link = None
    if html.is_file():
        link = f"[Open the full drift report]({drift_link(html)}) (Evidently, {html.name})"
    return drift_summary(report, path, link), drift_table(report)


def drift_link(html: Path) -> str:
    """The URL under which Gradio serves a file named in ``allowed_paths``."""
    return "/gradio_api/file=" + quote(str(html.resolve()))


def drift_summary(report: Mapping[str, Any], path: Path, link: str | None) -> str:
    """The drift stage's verdict in a few lines: dataset, scores, refusals, sample."""
    dataset = report.get("dataset", {})
    pred = report.get("prediction", {})
    sample = report.get("sample", {})
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "**drift**" if dataset.get("dataset_drift") else "no drift"
    lines = [
        f"Drift report `{path}` of {when}.",
        "",
        f"- Dataset: {verdict}: {dataset.get('drifted_columns')} of {dataset.get('columns')} "
        f"columns drifted (share {dataset.get('share_drifted_columns', 0):.2f}; the dataset "
        f"drifts at {dataset.get('drift_share')}).",
    ]
    if pred:
        moved = "drifted" if pred.get("drifted") else "stable"
        lines.append(
            f"- Scores: {moved}: {pred.get('method')} {pred.get('score', float('nan')):.3f} "
            f"(drift at {pred.get('threshold')})."
        )
        if "current_share_refused" in pred:
            lines.append(
                f"- Refused at the threshold: {percent(pred['current_share_refused'])} of the "
                f"current applicants, {percent(pred['reference_share_refused'])} of the "
                f"reference ({percent(pred['training_oof_share_refused'])} in training, "
                "out-of-fold)."
            )
    if sample:
        ref, cur = sample.get("reference", {}), sample.get("current", {})
        lines.append(
            f"- Compared {format_value(ref.get('sampled'))} of {format_value(ref.get('rows'))} "
            f"reference and {format_value(cur.get('sampled'))} of {format_value(cur.get('rows'))}"
            " current applicants."
        )
    lines += [
        "",
        link
        or f"The full report (`{path.with_suffix('.html')}`) is not here: "
        "`dvc pull` fetches it, `dvc repro drift` writes it.",
    ]
    return "\n".join(lines)


def drift_table(report: Mapping[str, Any], top: int = 20) -> pd.DataFrame:
    """The columns nearest to drifting first (score over its threshold)."""
    rows = [
        {
            "column": name,
            "method": c.get("method"),
            "score": round(c.get("score", float("nan")), 4),
            "drifts at": c.get("threshold"),
            "drifted": "yes" if c.get("drifted") else "no",
        }
        for name, c in report.get("columns", {}).items()
    ]
    frame = pd.DataFrame(rows, columns=["column", "method", "score", "drifts at", "drifted"])
    if frame.empty:
        return frame
    order = (frame["score"] / frame["drifts at"]).sort_values(ascending=False).index
    return frame.loc[order].head(top).reset_index(drop=True)
