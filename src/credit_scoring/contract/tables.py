"""The data contract every source's output must meet.

The contract (``contract/contract.json``) is derived from genuine Home Credit rows by
:mod:`credit_scoring.contract.profiling`; this module reads it: the tables, their columns, types,
levels and hard limits. It needs numpy only, so the service can check a request against it;
:mod:`credit_scoring.contract.conform` enforces it on whole tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from credit_scoring.errors import InputError

TABLES: tuple[str, ...] = (
    "application_train",
    "application_test",
    "bureau",
    "bureau_balance",
    "previous_application",
    "POS_CASH_balance",
    "credit_card_balance",
    "installments_payments",
)

INT, FLOAT, CATEGORY = "int64", "float64", "category"
KEY, TARGET = "SK_ID_CURR", "TARGET"  # the applicant, and whether they defaulted
# Home Credit's placeholder for "no date" in DAYS_* columns (pensioners' DAYS_EMPLOYED, say).
DAYS_PLACEHOLDER = 365243.0


class SchemaError(InputError, ValueError):
    """A table breaks the contract; the message names the table and the column."""

    def __init__(self, table: str, column: str | None, problem: str) -> None:
        self.table, self.column, self.problem = table, column, problem
        where = f"{table}.{column}" if column else table
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Limits:
    """The hard limits of a numeric column: what its meaning allows, and no genuine row breaks.

    ``values`` is the allowed set of a code (a flag's 0 and 1); ``minimum`` and ``maximum`` a
    closed range; ``allowed_extra`` the placeholders allowed beside them (DAYS_EMPLOYED's
    365243). A missing value never breaks a limit. The stages check whole columns with
    :meth:`outside`, the service one value with :meth:`breach`.
    """

    values: tuple[float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    allowed_extra: tuple[float, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values) or self.minimum is not None or self.maximum is not None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Limits:
        """Read the ``values``, ``min``, ``max`` and ``allowed_extra`` keys of a column entry."""
        return cls(
            values=tuple(raw.get("values", ())),
            minimum=raw.get("min"),
            maximum=raw.get("max"),
            allowed_extra=tuple(raw.get("allowed_extra", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """The keys :meth:`from_dict` reads, only those that are set."""
        out: dict[str, Any] = {}
        if self.values:
            out["values"] = list(self.values)
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.allowed_extra:
            out["allowed_extra"] = list(self.allowed_extra)
        return out

    def outside(self, numbers: np.ndarray) -> np.ndarray:
        """Where ``numbers`` break the limits; NaN (missing) never does."""
        numbers = np.asarray(numbers, dtype="float64")
        bad = np.zeros(numbers.shape, dtype=bool)
        if self.values:
            bad |= ~np.isin(numbers, self.values)
        if self.minimum is not None:
            bad |= numbers < self.minimum
        if self.maximum is not None:
            bad |= numbers > self.maximum
        if self.allowed_extra:
            bad &= ~np.isin(numbers, self.allowed_extra)
        return bad & ~np.isnan(numbers)

    def breach(self, value: float, name: str) -> str | None:
        """How one finite value breaks the limits of the field ``name``, or None if it does not.

        For instance ``7.0 is above the maximum 1 of EXT_SOURCE_2``.
        """
        if value in self.allowed_extra:
            return None
        if self.values and value not in self.values:
            problem = f"{value!r} is not one of {self._values()}, the values of {name}"
        elif self.minimum is not None and value < self.minimum:
            problem = f"{value!r} is below the minimum {plain_number(self.minimum)} of {name}"
        elif self.maximum is not None and value > self.maximum:
            problem = f"{value!r} is above the maximum {plain_number(self.maximum)} of {name}"
        else:
            return None
        extra = ", ".join(plain_number(v) for v in self.allowed_extra)
        return f"{problem} ({extra} is allowed too)" if extra else problem

    def describe(self) -> str:
        """The limits in words: ``in [0, 1]``, ``at least 0``, ``at most 0 (or 365243)``."""
        if self.values:
            text = f"in {self._values()}"
        elif self.minimum is not None and self.maximum is not None:
            text = f"in [{plain_number(self.minimum)}, {plain_number(self.maximum)}]"
        elif self.minimum is not None:
            text = f"at least {plain_number(self.minimum)}"
        elif self.maximum is not None:
            text = f"at most {plain_number(self.maximum)}"
        else:
            return "unlimited"
        extra = ", ".join(plain_number(v) for v in self.allowed_extra)
        return f"{text} (or {extra})" if extra else text

    def _values(self) -> str:
        return "[" + ", ".join(plain_number(v) for v in self.values) + "]"


def plain_number(value: float) -> str:
    """A limit as people write it: ``0``, ``1``, ``-6574.5``, ``365243``."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


@dataclass(frozen=True)
class Column:
    """One column: its dtype, nullability, category levels and hard limits."""

    name: str
    dtype: str
    nullable: bool
    levels: tuple[str, ...] = ()
    limits: Limits = Limits()

    @property
    def values(self) -> tuple[float, ...]:
        """The allowed set of an integer code (TARGET's 0 and 1), empty when any is allowed."""
        return self.limits.values


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")


Contract = dict[str, Table]


def contract_from_dict(raw: dict) -> Contract:
    """Build the typed contract from its JSON form."""
    return {
        name: Table(
            name=name,
            columns=tuple(
                Column(
                    name=c["name"],
                    dtype=c["dtype"],
                    nullable=c["nullable"],
                    levels=tuple(c.get("levels", ())),
                    limits=Limits.from_dict(c),
                )
                for c in spec["columns"]
            ),
            primary_key=tuple(spec.get("primary_key", ())),
            foreign_keys=tuple(
                ForeignKey(columns=tuple(fk["columns"]), table=fk["table"])
                for fk in spec.get("foreign_keys", ())
            ),
        )
        for name, spec in raw["tables"].items()
    }


@cache
def load_contract() -> Contract:
    """The packaged contract, read once per process."""
    text = resources.files("credit_scoring.contract").joinpath("contract.json").read_text()
    return contract_from_dict(json.loads(text))
