"""The screen's texts in markdown: a decision, its reasons, a what-if, the model card, a failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from credit_scoring.ui.client import ShownError
from credit_scoring.ui.formatting import (
    format_value,
    percent,
    points,
    points_change,
    policy_name,
    sentence,
)


def error_markdown(err: ShownError) -> str:
    """A failure as the screen shows it in place of a result: a warning heading, then why."""
    return f"### ⚠ {err.title}\n\n{err}"


def decision_markdown(result: Mapping[str, Any]) -> str:
    """The decision in one heading and the figures behind it in one line.

    The score in points beside the probability, the threshold beside its cut-off score: the
    same rule read both ways (a higher score is a lower risk).
    """
    who = f"applicant {result['client_id']}" if result.get("client_id") is not None else "form"
    referred = (
        "\n\n**The model refers this application to a credit officer**: its odds lie close to "
        "the threshold, where the model is least sure. Record the final decision below."
        if result.get("recommendation") == "refer"
        else ""
    )
    return (
        f"## {result['decision'].capitalize()}: probability of default "
        f"{percent(result['probability'])}, score {points(result['score'])}\n\n"
        f"**Model recommendation: {result['recommendation']}** (not yet a final decision) · "
        f"request `{result['request_id']}`\n\n"
        f"Threshold {percent(result['threshold'])} (refuse at or above) · cut-off score "
        f"{points(result['cutoff_score'])} (refuse at or below) · risk band "
        f"**{result['risk_band']}** · model `{result['model_version']}` · {who}{referred}"
    )


def final_markdown(final: Mapping[str, Any]) -> str:
    """An officer's recorded final decision, set apart from the model's recommendation."""
    verdict = (
        "overrides the model's recommendation"
        if final["overridden"]
        else "decides the referral"
        if final["recommendation"] == "refer"
        else "follows the model's recommendation"
    )
    note = f" · note: {final['note']}" if final["note"] else ""
    return (
        f"### Officer's final decision: {final['decision']}\n\n"
        f"{final['officer_id']} {verdict} ({final['recommendation']}) · reason: "
        f"{final['reason_text']} (`{final['reason']}`){note} · recorded as "
        f"`{final['request_id']}` at {final['time']}"
    )


def reasons_markdown(explanation: Mapping[str, Any]) -> str:
    """The service's reasons for a refusal; for an approval, what lowered the risk most."""
    if explanation["reasons"]:
        lines = [
            f"{i}. {r['text']} (`{r['code']}`)" for i, r in enumerate(explanation["reasons"], 1)
        ]
        return "**Principal reasons for the refusal**\n\n" + "\n".join(lines)
    helping = [c for c in explanation["contributions"] if c["contribution"] < 0][:3]
    lines = [
        f"- {sentence(c['description'])} = {format_value(c['value'])} "
        f"({points_change(c['points'])})"
        for c in helping
    ]
    return "**Approved.** What lowered the risk most:\n\n" + "\n".join(lines)


def what_if_markdown(
    before: Mapping[str, Any], after: Mapping[str, Any], notes: Sequence[str]
) -> str:
    """The decision before and after the changes, the changes in words, then the new reasons."""
    return (
        f"## {before['decision'].capitalize()} → {after['decision']}: "
        f"{percent(before['probability'])} → {percent(after['probability'])}, score "
        f"{before['score']:.0f} → {points(after['score'])}\n\n"
        f"Risk band {before['risk_band']} → **{after['risk_band']}** · threshold "
        f"{percent(after['threshold'])} · cut-off score {points(after['cutoff_score'])}\n\n"
        + ("\n".join(f"- {n}" for n in notes) if notes else "_Nothing changed yet._")
        + "\n\n"
        + reasons_markdown(after)
    )


def scale_text(scorecard: Mapping[str, Any]) -> str:
    """The points scale in one phrase: base score at base odds, and points to double them."""
    return (
        f"{format_value(scorecard['base_score'])} points at {format_value(scorecard['base_odds'])}"
        f":1 good:bad odds, {format_value(scorecard['points_to_double'])} points to double "
        "the odds (higher is safer)"
    )


def model_markdown(info: Mapping[str, Any]) -> str:
    """The model card in two small tables: what it is, and what it costs against the policies."""
    data, metrics, costs = info.get("data", {}), info.get("metrics", {}), info.get("costs", {})
    stored = info.get("stored_at") or "unknown"
    with_data = f"{data.get('source', '?')} data, {format_value(metrics.get('applicants'))} "
    with_data += f"training applicants (seed {data.get('seed', '?')})"
    rows = [
        ("Model", f"`{info['name']}:{info['version']}`"),
        ("In the model store since", stored.replace("T", " ").replace("+00:00", " UTC")),
        ("Data", with_data),
        ("Fitted on", info.get("fitting", {}).get("statement", "?")),
        ("AUC (out-of-fold)", f"{metrics.get('oof_auc', float('nan')):.4f}"),
        ("Default rate", percent(metrics.get("default_rate", float("nan")))),
        ("Threshold", f"{info['threshold']:.4f}: {info.get('rule', '')}"),
        ("Cut-off score", f"{points(info['cutoff_score'])}: refuse at or below"),
        ("Score scale", scale_text(info["scorecard"])),
        ("Refused at the threshold", percent(metrics.get("refused_share", float("nan")))),
        (
            "Costs",
            f"a missed default {costs.get('fn')}, a refused good payer {costs.get('fp')}",
        ),
        ("Features", f"{info.get('feature_count')} from {info.get('input_count')} inputs"),
    ]
    card = "\n".join(f"| {k} | {v} |" for k, v in rows[:1]) + "\n|---|---|\n"
    card += "\n".join(f"| {k} | {v} |" for k, v in rows[1:])
    policies = info.get("policies", {})
    lines = [
        f"| this model (threshold {info['threshold']:.4f}) | **{info['cost_per_applicant']:.4f}** |"
    ]
    lines += [f"| {policy_name(k)} | {v:.4f} |" for k, v in policies.items()]
    table = "| policy | cost per applicant |\n|---|---|\n" + "\n".join(lines)
    trivial = [v for k, v in policies.items() if k in ("approve_all", "refuse_all")]
    saving = ""
    if trivial and min(trivial) > 0:
        share = 1 - info["cost_per_applicant"] / min(trivial)
        saving = f"\n\nThe model saves {share:.0%} of the cost of the better trivial policy."
    return f"{card}\n\n**Cost per applicant** (out-of-fold)\n\n{table}{saving}"
