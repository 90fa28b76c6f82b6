"""The what-if fields: key fields a loan officer may change, in the units a person thinks in."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from credit_scoring.contract.tables import DAYS_PLACEHOLDER
from credit_scoring.ui.client import ShownError
from credit_scoring.ui.form import Field, as_text, category_dropdown, parse_number
from credit_scoring.ui.formatting import DAYS_PER_YEAR


@dataclass(frozen=True)
class Knob:
    """A key field the what-if tab lets one change, in the units a person thinks in.

    ``show`` turns the field's value into the text shown; ``send`` a number read back from
    that text (None when blank) into the field's value (None: leave the field out).
    """

    name: str
    label: str
    show: Callable[[Any], str] = as_text
    send: Callable[[Any], Any] = lambda number: number
    bounds: tuple[float, float] | None = None


def _years_employed(days: Any) -> str:
    if days is None or days == DAYS_PLACEHOLDER:
        return ""
    return f"{-float(days) / DAYS_PER_YEAR:.1f}"


def _days_employed(years: float | None) -> int:
    # DAYS_EMPLOYED is an integer field: the placeholder goes out as 365243, not 365243.0.
    return int(DAYS_PLACEHOLDER) if years is None else -round(years * DAYS_PER_YEAR)


KNOBS = (
    Knob("EXT_SOURCE_1", "External credit score 1 (0 to 1)", bounds=(0.0, 1.0)),
    Knob("EXT_SOURCE_2", "External credit score 2 (0 to 1)", bounds=(0.0, 1.0)),
    Knob("EXT_SOURCE_3", "External credit score 3 (0 to 1)", bounds=(0.0, 1.0)),
    Knob("AMT_INCOME_TOTAL", "Income", bounds=(0.0, math.inf)),
    Knob("AMT_CREDIT", "Credit amount", bounds=(0.0, math.inf)),
    Knob("AMT_ANNUITY", "Loan annuity", bounds=(0.0, math.inf)),
    Knob(
        "DAYS_EMPLOYED",
        "Years in current employment (blank: not employed)",
        show=_years_employed,
        send=_days_employed,
        bounds=(0.0, 80.0),
    ),
    Knob("NAME_INCOME_TYPE", "Income type", show=lambda v: v or "", send=lambda v: v or None),
)
CATEGORY_KNOBS = {"NAME_INCOME_TYPE"}


def knob_component(knob: Knob, fields: Mapping[str, Field]) -> gr.components.Component:
    """A text box (blank meaning missing), or a dropdown of the schema's levels."""
    if knob.name in CATEGORY_KNOBS:
        field = fields.get(knob.name)
        return category_dropdown(knob.label, field.levels if field else ())
    return gr.Textbox(label=knob.label, placeholder="missing")


def apply_knobs(
    features: Mapping[str, Any], values: Sequence[Any]
) -> tuple[dict[str, Any], list[str]]:
    """The applicant with the knobs' changes, and each change in words.

    A knob left as it was shown leaves its field untouched, so the rounding done for display
    (years employed) never changes an applicant by itself.
    """
    changed, notes, problems = dict(features), [], []
    for knob, value in zip(KNOBS, values, strict=True):
        shown = knob.show(features.get(knob.name))
        text = "" if value is None else str(value).strip()
        if text == shown.strip():
            continue
        if knob.name in CATEGORY_KNOBS:
            after = knob.send(text)
        else:
            try:
                number = parse_number(text, knob.label)
            except ShownError as err:
                problems.append(f"- {err}")
                continue
            lo, hi = knob.bounds or (-math.inf, math.inf)
            if number is not None and not lo <= number <= hi:
                problems.append(f"- {knob.label}: {text} is outside {lo:g} to {hi:g}.")
                continue
            after = knob.send(number)
        if after is None:
            changed.pop(knob.name, None)
        else:
            changed[knob.name] = after
        notes.append(f"{knob.label}: {shown or 'missing'} → {text or 'missing'}")
    if problems:
        raise ShownError("\n".join(problems), title="Check the form")
    return changed, notes
