"""The application form, built from the service's schema, and the reading of what was typed.

Numbers are typed in text boxes rather than Gradio's number inputs, which show and send 0 for
an empty value: here a blank field is missing, and missing and zero are different answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from credit_scoring.ui.client import ServiceClient, ServiceError, ShownError
from credit_scoring.ui.formatting import sentence

SHOWN_FIELDS = 12  # form fields shown open, most important first; the rest are folded away
KEY_FIELDS = (  # always shown open too: what a loan officer reads first
    "AMT_INCOME_TOTAL",
    "AMT_CREDIT",
    "AMT_ANNUITY",
    "EXT_SOURCE_1",
    "EXT_SOURCE_2",
    "EXT_SOURCE_3",
    "DAYS_BIRTH",
    "DAYS_EMPLOYED",
    "NAME_INCOME_TYPE",
)
MISSING = ("(missing)", "")  # the empty choice of every category dropdown


@dataclass(frozen=True)
class Field:
    """One input field of the service's schema."""

    name: str
    type: str  # number, integer or category
    description: str
    levels: tuple[str, ...] = ()
    audited: bool = False  # recorded for the fair-lending audit; the model never reads it

    @classmethod
    def from_schema(cls, item: Mapping[str, Any]) -> Field:
        """One entry of the service's ``/schema`` fields."""
        return cls(
            name=item["name"],
            type=item["type"],
            description=item.get("description") or item["name"],
            levels=tuple(item.get("levels") or ()),
            audited=bool(item.get("audited")),
        )

    @property
    def label(self) -> str:
        """Plain words first, the Home Credit name after, for those who know the data; an
        audited field says that it is not scored, so that no officer thinks it counts."""
        audited = " - recorded for audit, never scored" if self.audited else ""
        return f"{sentence(self.description)} ({self.name}){audited}"


def read_fields(client: ServiceClient) -> tuple[list[Field] | None, str | None]:
    """The schema's fields, or None and the reason the service could not give them."""
    try:
        return [Field.from_schema(item) for item in client.schema()["fields"]], None
    except ServiceError as err:
        return None, str(err)


def as_text(value: Any) -> str:
    """A field's value in a text box, exact (a float's shortest repr), blank when missing."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def parse_number(text: Any, label: str) -> float | None:
    """A number typed in a text box (``1,250.5`` too); blank is missing, anything else an error."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        number = float(text)
    else:
        cleaned = str(text).strip().replace(",", "").replace("_", "").replace(" ", "")
        if not cleaned:
            return None
        try:
            number = float(cleaned)
        except ValueError:
            raise ShownError(f"{label}: {str(text).strip()!r} is not a number.") from None
    if not math.isfinite(number):
        raise ShownError(f"{label}: {text!r} is not a finite number.")
    return number


def parse_client_id(text: Any) -> int | None:
    """An SK_ID_CURR typed on the screen as the integer the service expects; blank is None."""
    number = parse_number(text, "SK_ID_CURR")
    if number is None:
        return None
    if not number.is_integer():
        raise ShownError(f"SK_ID_CURR must be a whole number, not {text!r}.")
    return int(number)


def split_fields(fields: Sequence[Field]) -> tuple[list[Field], list[Field]]:
    """The fields shown open (the most important and the key ones) and those folded away."""
    top = {f.name for f in fields[:SHOWN_FIELDS]} | set(KEY_FIELDS)
    return [f for f in fields if f.name in top], [f for f in fields if f.name not in top]


def form_features(fields: Sequence[Field], values: Sequence[Any]) -> dict[str, Any]:
    """The form's values as the service's ``features``: a blank field is left out (missing).

    Every unreadable number is reported at once; the service checks the rest (types, levels).
    """
    features: dict[str, Any] = {}
    problems: list[str] = []
    for field, value in zip(fields, values, strict=True):
        if field.type == "category":
            if value not in (None, ""):
                features[field.name] = str(value)
            continue
        try:
            number = parse_number(value, field.label)
        except ShownError as err:
            problems.append(f"- {err}")
            continue
        if number is not None:
            integral = field.type == "integer" and number.is_integer()
            features[field.name] = int(number) if integral else number
    if problems:
        raise ShownError("\n".join(problems), title="Check the form")
    return features


def form_values(fields: Sequence[Field], features: Mapping[str, Any]) -> list[str]:
    """An applicant's fields as the form's text, the inverse of :func:`form_features`."""
    return [as_text(features.get(field.name)) for field in fields]


def category_dropdown(label: str, levels: Sequence[str]) -> gr.Dropdown:
    """A category's levels, and an empty first choice meaning missing."""
    return gr.Dropdown(
        choices=[MISSING, *((level, level) for level in levels)],
        value=MISSING[1],
        label=label,
        allow_custom_value=not levels,
        min_width=200,
    )


def form_component(field: Field) -> gr.components.Component:
    """A dropdown for a category, else a text box for a number (blank meaning missing)."""
    if field.type == "category":
        return category_dropdown(field.label, field.levels)
    return gr.Textbox(label=field.label, placeholder="missing", min_width=200)


def build_form(fields: Sequence[Field], schema_problem: str | None) -> list[Any]:
    """The form's inputs in schema order: key ones open, the rest in a folded accordion."""
    if schema_problem is not None:
        gr.Markdown(
            f"⚠ The application form is built from the service's schema, which could not be "
            f"read at start-up: {schema_problem}\n\nThis app checks every few seconds and "
            "rebuilds itself when the service answers: reload the page then."
        )
        return []
    shown, folded = split_fields(fields)
    made: dict[str, Any] = {}
    for group, container in ((shown, None), (folded, f"More fields ({len(folded)})")):
        if container is None:
            _form_rows(group, made)
        else:
            with gr.Accordion(container, open=False):
                _form_rows(group, made)
    return [made[f.name] for f in fields]


def _form_rows(fields: Sequence[Field], made: dict[str, Any], per_row: int = 2) -> None:
    for start in range(0, len(fields), per_row):
        with gr.Row():
            for field in fields[start : start + per_row]:
                made[field.name] = form_component(field)
