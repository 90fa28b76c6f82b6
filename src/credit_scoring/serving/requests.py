"""Strict checks of a scoring request against the fields the packaged model accepts.

A typo must never be silently dropped, a number must be a finite number, and a category must be
one of the contract's levels: each problem names its field (``features.AMT_CREDIT``), so the
service can answer HTTP 400 with a body a caller can act on. Absent or null fields are allowed
and mean "missing", as they do in the training data.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credit_scoring.contract.tables import CATEGORY, INT, KEY, TARGET, Table
from credit_scoring.features.feature_schema import FeatureSchema

Location = tuple[str | int, ...]
MAX_INTEGER = 2**53  # the largest integer a float64 (the model's input) holds exactly


@dataclass(frozen=True)
class Problem:
    """One invalid part of a request, in the shape of a pydantic error (as BentoML reports)."""

    loc: Location
    msg: str
    type: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestError(ValueError):
    """A request the model cannot score; ``to_dict`` is the HTTP 400 body."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        where = ".".join(str(part) for part in first.loc)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{where}: {first.msg}{more}")

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "detail": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class Field:
    """An input field: ``number``, ``integer`` or ``category`` (with its allowed levels)."""

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    description: str = ""
    audited: bool = False  # a prohibited basis: recorded for the fair-lending audit, not scored

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.kind == "category":
            out["levels"] = list(self.levels)
        if self.description:
            out["description"] = self.description
        if self.audited:
            out["audited"] = True
        return out


class RequestSchema:
    """The accepted ``features`` of a request, in the order a form should show them."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = {f.name: f for f in fields}
        self._levels = {f.name: frozenset(f.levels) for f in fields if f.kind == "category"}

    @classmethod
    def from_contract(
        cls, table: Table, schema: FeatureSchema, order: Sequence[str], describe: Any
    ) -> RequestSchema:
        """The schema's inputs typed by the contract (XNA stays allowed: it means missing).

        The audited fields are accepted too (last), so that a decision keeps them for the
        fair-lending audit, though the model never reads them. ``order`` ranks the fields
        (most important first); ``describe`` names one in words.
        """
        rank = {name: i for i, name in enumerate(order)}
        inputs = sorted(schema.inputs, key=lambda n: (rank.get(n, len(rank)), n))
        fields = []
        for name in [*inputs, *schema.audited]:
            column = table.column(name)
            kind = {CATEGORY: "category", INT: "integer"}.get(column.dtype, "number")
            audited = name in schema.audited
            fields.append(Field(name, kind, tuple(column.levels), describe(name), audited))
        return cls(fields)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RequestSchema:
        return cls(
            [
                Field(
                    f["name"],
                    f["type"],
                    tuple(f.get("levels", ())),
                    f.get("description", ""),
                    f.get("audited", False),
                )
                for f in raw["fields"]
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [f.to_dict() for f in self.fields.values()]}

    def problems(self, features: Mapping[str, Any], loc: Location = ("features",)) -> list[Problem]:
        """Every problem of one applicant's fields; an empty list means it can be scored."""
        found = []
        for name, value in features.items():
            field = self.fields.get(name)
            if field is None:
                found.append(Problem((*loc, name), self._unknown(name), "unknown_field"))
            elif value is not None:
                msg = self._check(field, value)
                if msg:
                    found.append(Problem((*loc, name), msg, f"invalid_{field.kind}"))
        return found

    def _unknown(self, name: str) -> str:
        if name == KEY:
            return f"unknown field; send the applicant's {KEY} as client_id, beside features"
        if name == TARGET:
            return f"unknown field; {TARGET} is what the model predicts, not an input"
        close = difflib.get_close_matches(name, self.fields, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else "; see the schema endpoint"
        return f"unknown field{hint}"

    def _check(self, field: Field, value: Any) -> str | None:
        if field.kind == "category":
            if not isinstance(value, str):
                return f"expected one of the levels as a string, got {type(value).__name__}"
            if value not in self._levels[field.name]:
                return f"{value!r} is not a level of {field.name}; allowed: {list(field.levels)}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type(value).__name__}"
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            return "expected a number of at most 2**53 in size"
        if not math.isfinite(value):
            return f"expected a finite number, got {value}"
        if field.kind == "integer" and value != int(value):
            return f"expected a whole number, got {value}"
        return None
