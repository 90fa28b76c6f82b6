"""Strict checks of a scoring request against the fields the packaged model accepts.

A typo must never be silently dropped, a number must be a finite number inside the contract's
hard limits (a normalised score in [0, 1], an amount at least 0...), and a category must be one
of the contract's levels: each problem names its field (``features.AMT_CREDIT``), so the service
can answer HTTP 400 with a body a caller can act on. Absent or null fields mean "missing", as
they do in the training data, except the required ones (``package.required``) a decision cannot
be made without. A value inside the limits but outside the range the model saw in training is
scored, with a warning that names it (:meth:`RequestSchema.warnings`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from credit_scoring.contract.tables import CATEGORY, INT, KEY, TARGET, Limits, Table
from credit_scoring.errors import ConfigError
from credit_scoring.features.feature_schema import FeatureSchema

Location = tuple[str | int, ...]
MAX_INTEGER = 2**53  # the largest integer a float64 (the model's input) holds exactly
REQUIRED = "required: a decision cannot be made without it"
# Problems that are no fault of the request's shape: what we do not hold (404), and a
# decision asked of a simulation (409). Any other problem is a 400.
STATUS = {"unknown_client": 404, "not_found": 404, "simulation": 409}


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

    @property
    def status(self) -> int:
        """The HTTP status every problem shares in :data:`STATUS` (404, 409), else 400."""
        statuses = {STATUS.get(p.type, 400) for p in self.problems}
        return statuses.pop() if len(statuses) == 1 else 400

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "detail": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class Field:
    """An input field: ``number``, ``integer`` or ``category`` (with its allowed levels).

    ``limits`` are the contract's hard limits; ``seen`` the range (lowest, highest) of the
    field in the model's development data, when the package stage recorded one; ``required``
    that a decision cannot be made without it.
    """

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    description: str = ""
    audited: bool = False  # a prohibited basis: recorded for the fair-lending audit, not scored
    limits: Limits = dataclasses.field(default_factory=Limits)
    seen: tuple[float, float] | None = None
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.kind == "category":
            out["levels"] = list(self.levels)
        if self.description:
            out["description"] = self.description
        if self.audited:
            out["audited"] = True
        out.update(self.limits.to_dict())
        if self.seen is not None:
            out["seen_min"], out["seen_max"] = self.seen
        if self.required:
            out["required"] = True
        return out

    def json_schema(self) -> dict[str, Any]:
        """What :class:`RequestSchema` accepts of this field, as JSON Schema (2020-12).

        A number is at most 2**53 in size (what a float64 holds exactly); null means missing,
        except for a required field.
        """
        if self.kind == "category":
            accepted: dict[str, Any] = {"enum": list(self.levels)}
        elif self.limits.values:
            accepted = {"enum": list(self.limits.values)}
        else:
            accepted = {
                "type": self.kind,
                "minimum": -MAX_INTEGER if self.limits.minimum is None else self.limits.minimum,
                "maximum": MAX_INTEGER if self.limits.maximum is None else self.limits.maximum,
            }
            if self.limits.allowed_extra:
                accepted = {"anyOf": [accepted, {"enum": list(self.limits.allowed_extra)}]}
        if not self.required:
            accepted = {"anyOf": [*accepted.get("anyOf", [accepted]), {"type": "null"}]}
        return {**accepted, "description": self.description} if self.description else accepted

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Field:
        seen = (raw["seen_min"], raw["seen_max"]) if "seen_min" in raw else None
        return cls(
            raw["name"],
            raw["type"],
            tuple(raw.get("levels", ())),
            raw.get("description", ""),
            raw.get("audited", False),
            Limits.from_dict(raw),
            seen,
            raw.get("required", False),
        )


def _passes(field: Field) -> Callable[[Any], bool]:
    """A quick test that a value of ``field`` passes every check; a value it does not pass
    goes through the full checks, which name the problem (or find none after all).

    A batch of 1,000 applicants has some 120,000 values: this keeps their check to one
    comparison or two each, a third of the time the full checks take.
    """
    if field.kind == "category":
        levels = frozenset(field.levels)
        return lambda value: type(value) is str and value in levels
    limits = field.limits
    extra = frozenset(limits.allowed_extra)
    if limits.values:
        allowed = frozenset(limits.values) | extra
        return lambda value: type(value) in (int, float) and value in allowed
    low = -MAX_INTEGER if limits.minimum is None else max(limits.minimum, -MAX_INTEGER)
    high = MAX_INTEGER if limits.maximum is None else min(limits.maximum, MAX_INTEGER)
    whole = field.kind == "integer"

    def passes(value: Any) -> bool:
        kind = type(value)
        if kind is float:
            if whole and not value.is_integer():
                return False
        elif kind is not int:
            return False
        return low <= value <= high or value in extra

    return passes


class RequestSchema:
    """The accepted ``features`` of a request, in the order a form should show them."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = {f.name: f for f in fields}
        self.required = tuple(f.name for f in fields if f.required)
        self._levels = {f.name: frozenset(f.levels) for f in fields if f.kind == "category"}
        self._passes = {f.name: _passes(f) for f in fields}
        self._ranges: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, list]] = {}

    @classmethod
    def from_contract(
        cls,
        table: Table,
        schema: FeatureSchema,
        order: Sequence[str],
        describe: Any,
        seen: Mapping[str, tuple[float, float]] | None = None,
        required: Sequence[str] = (),
    ) -> RequestSchema:
        """The schema's inputs typed and limited by the contract (XNA stays allowed: it means
        missing).

        The audited fields are accepted too (last), so that a decision keeps them for the
        fair-lending audit, though the model never reads them. ``order`` ranks the fields
        (most important first); ``describe`` names one in words; ``seen`` is each numeric
        input's range in the development data
        (:func:`~credit_scoring.serving.packaging.training_ranges`; beyond it a decision warns)
        and ``required`` the fields no decision is made without. A required field that is no
        input is a :class:`~credit_scoring.errors.ConfigError`.
        """
        seen = seen or {}
        unknown = [name for name in required if name not in schema.inputs]
        if unknown:
            raise ConfigError(
                f"package.required: {unknown} are not inputs of the model; "
                f"choose among {sorted(schema.inputs)}"
            )
        rank = {name: i for i, name in enumerate(order)}
        inputs = sorted(schema.inputs, key=lambda n: (rank.get(n, len(rank)), n))
        fields = []
        for name in [*inputs, *schema.audited]:
            column = table.column(name)
            kind = {CATEGORY: "category", INT: "integer"}.get(column.dtype, "number")
            audited = name in schema.audited
            fields.append(
                Field(
                    name,
                    kind,
                    tuple(column.levels),
                    describe(name),
                    audited,
                    column.limits,
                    None if audited else seen.get(name),
                    name in required,
                )
            )
        return cls(fields)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RequestSchema:
        return cls([Field.from_dict(f) for f in raw["fields"]])

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [f.to_dict() for f in self.fields.values()]}

    def json_schema(self) -> dict[str, Any]:
        """A request's ``features`` object as JSON Schema: what :meth:`problems` accepts."""
        return {
            "type": "object",
            "description": "Raw application fields by their Home Credit names; absent or null "
            "means missing, except for the required ones.",
            "properties": {name: f.json_schema() for name, f in self.fields.items()},
            "required": list(self.required),
            "additionalProperties": False,
        }

    def problems(self, features: Mapping[str, Any], loc: Location = ("features",)) -> list[Problem]:
        """Every problem of one applicant's fields; an empty list means it can be scored."""
        found = []
        for name, value in features.items():
            passes = self._passes.get(name)
            if passes is not None and (value is None or passes(value)):
                continue
            field = self.fields.get(name)
            if field is None:
                found.append(Problem((*loc, name), self._unknown(name), "unknown_field"))
            elif value is not None:
                msg = self._check(field, value)
                if msg:
                    found.append(Problem((*loc, name), msg, f"invalid_{field.kind}"))
                elif field.limits and (breach := field.limits.breach(value, name)):
                    found.append(Problem((*loc, name), breach, "out_of_limits"))
        for name in self.required:
            if features.get(name) is None:
                found.append(Problem((*loc, name), REQUIRED, "missing_required"))
        return found

    def warnings(self, names: Sequence[str], matrix: np.ndarray) -> list[list[str]]:
        """For each row of ``matrix`` (columns ``names``), the values outside the training range.

        Such a value is inside the hard limits, so it is scored, but the model never saw one
        like it: each warning names the field, its value and the nearest value seen. Missing
        values and the contract's placeholders (DAYS_EMPLOYED's 365243) warn of nothing.
        """
        lowest, highest, placeholders = self._training_ranges(tuple(names))
        below, above = matrix < lowest, matrix > highest
        unseen = below | above
        for j, values in placeholders:
            unseen[:, j] &= ~np.isin(matrix[:, j], values)
        out: list[list[str]] = [[] for _ in range(len(matrix))]
        for i, j in zip(*np.nonzero(unseen), strict=True):
            if below[i, j]:
                words = f"below the smallest value seen in training ({lowest[j]:g})"
            else:
                words = f"above the largest value seen in training ({highest[j]:g})"
            out[i].append(f"{names[j]}: {float(matrix[i, j]):g} is {words}")
        return out

    def _training_ranges(
        self, names: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
        """Each column's training range (unbounded when none is recorded) and placeholders,
        worked out once per column layout."""
        if names not in self._ranges:
            fields = [self.fields.get(n) for n in names]
            seen = [None if f is None else f.seen for f in fields]
            self._ranges[names] = (
                np.array([-np.inf if r is None else r[0] for r in seen]),
                np.array([np.inf if r is None else r[1] for r in seen]),
                [
                    (j, np.array(f.limits.allowed_extra))
                    for j, f in enumerate(fields)
                    if f is not None and f.limits.allowed_extra
                ],
            )
        return self._ranges[names]

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
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected a finite number, got {value}"
        if abs(value) > MAX_INTEGER:
            return "expected a number of at most 2**53 in size"
        if field.kind == "integer" and value != int(value):
            return f"expected a whole number, got {value}"
        return None
