"""The tuning study as one offline HTML page: what was searched, what won, by how much, and
which settings mattered. It reads :func:`credit_scoring.tuning.search.summary`'s mapping."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from credit_scoring.validation.report import STYLE, html_table


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_html(summary: Mapping[str, Any]) -> str:
    """The page: the best trial against the model's own settings, the importances, every trial.

    Self-contained (inline CSS, no script) and every value escaped, like the validation report.
    """
    best, own = summary["best"], summary["own"]
    names = list(best["settings"])
    compared = [
        ("Out-of-fold AUC", f"{best['auc']:.4f}", f"{own['auc']:.4f}" if own else "n/a"),
        ("Rounds", str(best["rounds"]), str(own["rounds"]) if own else "n/a"),
        *(
            (name, _value(best["settings"][name]), _value(own["settings"][name]) if own else "n/a")
            for name in names
        ),
    ]
    importance = [(name, f"{share:.3f}") for name, share in summary["importances"].items()]
    trials = [
        [str(row["trial"]), f"{row['auc']:.4f}", f"{row['best_auc']:.4f}", str(row["rounds"])]
        + [_value(row[name]) for name in names]
        for row in summary["history"]
    ]
    title = f"Tuning study {summary['study']}"
    parts = [
        f"<p>{summary['trials']} trials (seed {summary['seed']}), each scored by the"
        " out-of-fold AUC of the training protocol on the development applicants; the hold-out"
        " was never read. Trial 0 is the model's own settings when they lie in the space.</p>",
        "<h2>Best trial against the model's own settings</h2>",
        html_table(("", f"Best (trial {best['trial']})", "Own settings"), compared),
        "<h2>Parameter importances (fANOVA)</h2>",
        html_table(("Parameter", "Share of the AUC's variance"), importance)
        if importance
        else "<p>Too few trials to tell.</p>",
        "<h2>Every trial</h2>",
        html_table(("Trial", "AUC", "Best so far", "Rounds", *names), trials),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )
