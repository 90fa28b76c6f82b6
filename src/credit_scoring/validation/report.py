"""The validation report as one offline HTML page for a model-risk reviewer.

The report is a JSON-like mapping; the validation stage builds it from this package's functions,
writes it as JSON and renders it with :func:`render_html`. Tables are lists of records, as
:func:`records` makes them; rates are shares in [0, 1]; ``None`` stands for a value that does
not exist (JSON has no NaN) and shows as "n/a". Every section is optional and a missing one is
left out of the page; inside a section, only keys marked optional may be absent::

    summary:                                   # each key optional: only those present show
        model_version: str
        fitting: str                           # which applicants the served model was fitted on
        data_sets: {name: applicants}          # e.g. {"oof": 246008, "holdout": 61503}
        threshold: float                       # refuse when p >= threshold
        cutoff_score: float                    # optional: the threshold on the points scale
    discrimination:
        level: float                           # of the bootstrap intervals, e.g. 0.95
        holdout: {gini, gini_low, gini_high, ks, ks_at, ks_low, ks_high, auc}
        oof: {...the same keys}                # each optional, not both: discrimination()
    deciles:
        data_set: str                          # the scores the deciles are cut from
        table: [band_table records]            # band, applicants, defaults, default_rate,
                                               # mean_pd, captured, lift
        inversions: [[lower, higher], ...]     # inversions(table)
    bands:
        data_set: str
        level: float                           # of the Jeffreys intervals
        table: [jeffreys_test records]         # the band_table columns and low, high, passes
        inversions: [[lower, higher], ...]
    stability:
        reference: str                         # the data set the model was validated on
        current: str                           # the data set compared with it
        score_psi: float
        score_reading: str                     # reading(score_psi)
        characteristics: [characteristic_stability records]   # feature, psi, reading
    fairness:
        min_applicants: int                    # the group_table argument
        table: [group_table records]
    age:
        applicants: int                        # applicants aged 62 or over
        share_toward_refusal: float            # of them, the share whose age-derived
                                               # contributions push toward refusal
        max_contribution: float                # the largest such push, in log-odds
        passes: bool
    exclusions:
        excluded: [str]                        # the prohibited bases kept out of the model
        auc_cost: float                        # optional: AUC with them minus AUC without

Each section shows its title, one sentence saying what its table shows, a verdict badge with
its reason, then the table. The summary's badge is the worst verdict of the other sections.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from credit_scoring.validation.fairness import FOUR_FIFTHS

PASS, WATCH, FLAGGED, FAIL = "PASS", "WATCH", "FLAGGED", "FAIL"
SEVERITY = {PASS: 0, WATCH: 1, FLAGGED: 2, FAIL: 3}
TITLES = {
    "summary": "Summary",
    "discrimination": "Discrimination",
    "deciles": "Rank ordering by decile",
    "bands": "Calibration by risk band",
    "stability": "Population stability",
    "fairness": "Fair lending: groups",
    "age": "Fair lending: age",
    "exclusions": "Excluded bases",
}
SENTENCES = {
    "summary": "What was validated, on which data and at which threshold, with the worst verdict"
    " of the sections below.",
    "discrimination": "How well the scores separate defaulters from good payers, on the hold-out"
    " and out of fold, with bootstrap intervals.",
    "deciles": "Default rates by decile of the score, lowest risk first: each decile should"
    " default more often than the one before.",
    "bands": "Default rates by risk band against the mean predicted probability of default, with"
    " the Jeffreys interval of each rate.",
    "stability": "How far the applicants scored now have moved from those the model was"
    " validated on: the PSI of the score and of each characteristic.",
    "fairness": "Approval and error rates by group, with the adverse impact ratio against the"
    " most approved group of each attribute.",
    "age": "Whether age counts against applicants aged 62 or over, who may not be disadvantaged"
    " for their age.",
    "exclusions": "The prohibited bases kept out of the model, and the discrimination given up"
    " by leaving them out.",
}
STYLE = """
body { font-family: system-ui, sans-serif; color: #222; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
tr.marked td { background: #fdecea; }
.badge { color: #fff; font-weight: 700; padding: .1rem .5rem; border-radius: .25rem; }
.pass { background: #2e7d32; } .watch { background: #a15c00; }
.flagged { background: #6a1b9a; } .fail { background: #c62828; }
.reason { margin-left: .5rem; }
"""


@dataclass(frozen=True)
class _Section:
    status: str
    reason: str
    body: str


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready records: Python scalars, ``None`` for NaN (JSON has no NaN)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


NONE = "n/a"  # what a value that does not exist shows as


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _percent(value: Any) -> str:
    return NONE if _absent(value) else f"{100 * value:.2f}%"


def _number(value: Any, digits: int = 3) -> str:
    return NONE if _absent(value) else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    return NONE if _absent(value) else f"{int(value):,}"


def _never(_: int) -> bool:
    return False


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], marked: Callable[[int], bool] = _never
) -> str:
    """An HTML table, every cell escaped; rows ``marked`` by index are highlighted."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        ('<tr class="marked">' if marked(i) else "<tr>")
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(section: Mapping[str, Any], verdicts: Mapping[str, str]) -> _Section:
    worst = max(verdicts.values(), key=SEVERITY.__getitem__, default=PASS)
    reason = (
        "every section passes"
        if worst == PASS
        else f"worst verdict {worst} in: "
        + ", ".join(TITLES[k] for k, v in verdicts.items() if v == worst)
    )
    rows = []
    if "model_version" in section:
        rows.append(("Model version", str(section["model_version"])))
    if "fitting" in section:
        rows.append(("Fitted on", str(section["fitting"])))
    if "threshold" in section:
        rows.append(("Threshold", f"{section['threshold']:.4f} (refuse when p ≥ threshold)"))
    if "cutoff_score" in section:
        rows.append(("Cut-off score", _number(section["cutoff_score"], 1)))
    rows += [(f"Applicants, {name}", _count(n)) for name, n in section.get("data_sets", {}).items()]
    return _Section(worst, reason, html_table(("Item", "Value"), rows))


DATA_SETS = {"holdout": "hold-out", "oof": "out of fold"}


def _discrimination(section: Mapping[str, Any]) -> _Section:
    sets = {name: section[key] for key, name in DATA_SETS.items() if key in section}
    name, main = next(iter(sets.items()))
    if main["gini_low"] <= 0:
        status = FAIL
        reason = f"the {name} Gini interval reaches {main['gini_low']:.3f}: no better than chance"
    elif len(sets) == 2 and section["holdout"]["gini"] < section["oof"]["gini_low"]:
        status, oof = WATCH, section["oof"]
        reason = (
            f"the hold-out Gini {main['gini']:.3f} is below the out-of-fold interval "
            f"[{oof['gini_low']:.3f}, {oof['gini_high']:.3f}]: weaker on unseen applicants"
        )
    else:
        status = PASS
        reason = f"{name} Gini {main['gini']:.3f}, its interval above zero" + (
            ", consistent with out of fold" if len(sets) == 2 else ""
        )

    def interval(values: Mapping[str, Any], key: str) -> str:
        return (
            f"{_number(values[key])} [{_number(values[f'{key}_low'])}, "
            f"{_number(values[f'{key}_high'])}]"
        )

    level = f"{100 * section.get('level', 0.95):g}%"
    rows = [
        (f"Gini [{level} interval]", *(interval(v, "gini") for v in sets.values())),
        (f"KS [{level} interval]", *(interval(v, "ks") for v in sets.values())),
        ("KS reached at p ≤", *(_number(v["ks_at"], 4) for v in sets.values())),
        ("AUC", *(_number(v["auc"]) for v in sets.values())),
    ]
    return _Section(status, reason, html_table(("Statistic", *sets), rows))


def _steps(pairs: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{low} → {high}" for low, high in pairs)


def _band_rows(table: Sequence[Mapping[str, Any]], jeffreys: bool) -> list[tuple[str, ...]]:
    rows = []
    for row in table:
        cells = [str(row["band"]), _count(row["applicants"]), _count(row["defaults"])]
        cells += [_percent(row["default_rate"]), _percent(row["mean_pd"])]
        if jeffreys:
            cells += [_percent(row["low"]), _percent(row["high"])]
            cells.append("yes" if row["passes"] else "NO")
        cells += [_percent(row["captured"]), _number(row["lift"], 2)]
        rows.append(tuple(cells))
    return rows


BAND_HEADERS = ("Applicants", "Defaults", "Default rate", "Mean PD")


def _deciles(section: Mapping[str, Any]) -> _Section:
    table, pairs = section["table"], section["inversions"]
    status, reason = (
        (WATCH, f"the default rate does not rise at {len(pairs)} step(s): {_steps(pairs)}")
        if pairs
        else (PASS, "the default rate rises from every decile to the next")
    )
    higher = {high for _, high in pairs}
    headers = (f"Decile ({section['data_set']})", *BAND_HEADERS, "Captured", "Lift")
    rows = _band_rows(table, jeffreys=False)
    return _Section(status, reason, html_table(headers, rows, lambda i: rows[i][0] in higher))


def _bands(section: Mapping[str, Any]) -> _Section:
    table, pairs = section["table"], section["inversions"]
    failing = [str(row["band"]) for row in table if not row["passes"]]
    if failing:
        status = FAIL
        reason = f"mean PD outside the Jeffreys interval in: {', '.join(failing)}"
    elif pairs:
        status = WATCH
        reason = f"the default rate does not rise at {len(pairs)} step(s): {_steps(pairs)}"
    else:
        status = PASS
        reason = "every mean PD lies in its interval and the default rate rises band by band"
    level = f"{100 * section['level']:g}%"
    headers = (
        f"Band ({section['data_set']})",
        *BAND_HEADERS,
        f"Jeffreys {level} low",
        "high",
        "Mean PD inside",
        "Captured",
        "Lift",
    )
    marked = set(failing) | {high for _, high in pairs}
    rows = _band_rows(table, jeffreys=True)
    return _Section(status, reason, html_table(headers, rows, lambda i: rows[i][0] in marked))


READING_STATUS = {"stable": PASS, "watch": WATCH, "shifted": FAIL}


def _stability(section: Mapping[str, Any]) -> _Section:
    status = READING_STATUS[section["score_reading"]]
    reason = f"score PSI {section['score_psi']:.3f} ({section['score_reading']})"
    characteristics = sorted(section["characteristics"], key=lambda c: -c["psi"])
    shifted = [c["feature"] for c in characteristics if c["reading"] == "shifted"]
    if shifted:
        status = max(status, WATCH, key=SEVERITY.__getitem__)
        reason += f"; {len(shifted)} characteristic(s) shifted: {', '.join(shifted)}"
    score = ("score (probability of default)", _number(section["score_psi"]))
    rows = [(*score, section["score_reading"])]
    rows += [(c["feature"], _number(c["psi"]), c["reading"]) for c in characteristics]
    headers = (f"{section['current']} against {section['reference']}", "PSI", "Reading")
    return _Section(status, reason, html_table(headers, rows, lambda i: rows[i][2] != "stable"))


def _fairness(section: Mapping[str, Any]) -> _Section:
    table = section["table"]
    flagged = [row for row in table if row["flagged"]]
    if flagged:
        status = FLAGGED
        reason = f"{len(flagged)} group(s) approved at under {FOUR_FIFTHS:.0%} of the top rate: "
        reason += ", ".join(
            f"{r['attribute']}={r['group']} ({_number(r['adverse_impact_ratio'])})" for r in flagged
        )
    else:
        status = PASS
        reason = (
            f"every group of {section['min_applicants']} or more applicants is approved at "
            f"{FOUR_FIFTHS:.0%} or more of the top rate of its attribute"
        )
    rows = [
        (
            str(r["attribute"]),
            str(r["group"]),
            _count(r["applicants"]),
            _percent(r["approval_rate"]),
            _percent(r["false_negative_rate"]),
            _percent(r["false_positive_rate"]),
            _number(r["adverse_impact_ratio"]),
            "flagged" if r["flagged"] else "small: not judged" if r["small"] else "",
        )
        for r in table
    ]
    headers = (
        "Attribute",
        "Group",
        "Applicants",
        "Approval rate",
        "Defaulters approved (FNR)",
        "Good payers refused (FPR)",
        "Adverse impact ratio",
        "Note",
    )
    return _Section(status, reason, html_table(headers, rows, lambda i: table[i]["flagged"]))


def _age(section: Mapping[str, Any]) -> _Section:
    status = PASS if section["passes"] else FLAGGED
    reason = (
        f"{_percent(section['share_toward_refusal'])} of applicants aged 62+ pushed toward "
        f"refusal by age, by at most {_number(section['max_contribution'])} log-odds"
    )
    headers = ("Applicants aged 62+", "Pushed toward refusal by age", "Largest push (log-odds)")
    rows = [
        (
            _count(section["applicants"]),
            _percent(section["share_toward_refusal"]),
            _number(section["max_contribution"]),
        )
    ]
    return _Section(status, reason, html_table(headers, rows))


def _exclusions(section: Mapping[str, Any]) -> _Section:
    excluded = list(section["excluded"])
    if not excluded:
        status, reason = WATCH, "no prohibited basis is recorded as excluded"
    else:
        status, reason = PASS, f"{len(excluded)} prohibited basis(es) kept out of the model"
        if not _absent(section.get("auc_cost")):
            reason += f", giving up {section['auc_cost']:.4f} AUC"
    rows = [(basis,) for basis in excluded]
    return _Section(status, reason, html_table(("Excluded basis",), rows))


RENDERERS: dict[str, Callable[[Mapping[str, Any]], _Section]] = {
    "discrimination": _discrimination,
    "deciles": _deciles,
    "bands": _bands,
    "stability": _stability,
    "fairness": _fairness,
    "age": _age,
    "exclusions": _exclusions,
}


def _html_section(key: str, section: _Section) -> str:
    return (
        f'<section id="{key}"><h2>{html.escape(TITLES[key])}</h2>'
        f"<p>{html.escape(SENTENCES[key])}</p>"
        f'<p><span class="badge {section.status.lower()}">{section.status}</span>'
        f'<span class="reason">{html.escape(section.reason)}</span></p>'
        f"{section.body}</section>"
    )


def verdicts(report: Mapping[str, Any]) -> dict[str, str]:
    """Each section's verdict (PASS, WATCH, FLAGGED or FAIL), as the page shows it.

    The stage fails on the sections its configuration names, by these verdicts.
    """
    return {key: render(report[key]).status for key, render in RENDERERS.items() if key in report}


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page: inline CSS, no script, no remote resource.

    A reviewer can open it offline or archive it with the model; every value is escaped, so a
    feature or group name cannot inject markup. Sections absent from ``report`` are skipped.
    """
    sections = {key: render(report[key]) for key, render in RENDERERS.items() if key in report}
    parts = []
    if "summary" in report:
        verdicts = {key: section.status for key, section in sections.items()}
        parts.append(_html_section("summary", _summary(report["summary"], verdicts)))
    parts += [_html_section(key, section) for key, section in sections.items()]
    version = report.get("summary", {}).get("model_version")
    title = "Model validation report" + (f": {version}" if version is not None else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )
