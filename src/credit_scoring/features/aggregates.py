"""Per-applicant aggregates of the six history tables, as the configuration spells them out.

A spec (``params.yaml``, section ``aggregate``) names groups: a table, its numeric columns with
their aggregations, its categorical columns (one share per level), subsets of rows that get the
numeric aggregations again, and, for bureau, a roll-up of bureau_balance per credit first.
:func:`plan_groups` turns it into named aggregations that depend on the contract only, never on
the data, so the column set is the same on every run. :func:`aggregate` runs a plan with
polars, the fastest engine ``benchmarks/aggregate.py`` measured; the plain pandas yardstick the
tests and that benchmark hold it to lives with them, in ``tests/support/reference_aggregates.py``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from credit_scoring.contract.tables import (
    CATEGORY,
    KEY,
    Column,
    Contract,
    SchemaError,
    load_contract,
)
from credit_scoring.errors import InputError
from credit_scoring.floats import canonical

log = logging.getLogger(__name__)

AGGREGATIONS = ("min", "max", "mean", "sum", "var", "size", "nunique")
MISSING_LEVEL = "NAN"  # the label of the share of rows where a nullable categorical is missing
SPEC_KEYS = frozenset(  # what a group's (or a roll-up's) spec may hold; anything else is a typo
    ("table", "prefix", "key", "rollup", "missing", "subsets", "count", "numeric", "categorical")
)


class SpecError(InputError, ValueError):
    """The aggregation spec names a table, column, level or aggregation that does not exist."""


@dataclass(frozen=True)
class Derived:
    """A column computed row by row before aggregating.

    ``op`` is ``ratio`` (a / b, missing when b is 0 or missing, so never inf), ``difference``
    (a - b), ``excess`` (max(a - b, 0), missing when either is) or ``flag`` (1.0 when a > 0).
    """

    op: str
    args: tuple[str, ...]


# Defined once here; the spec names them like any other column of their table.
DERIVED: dict[str, dict[str, Derived]] = {
    "bureau": {
        "DEBT_CREDIT_RATIO": Derived("ratio", ("AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM")),
    },
    "previous_application": {
        "APPLICATION_CREDIT_RATIO": Derived("ratio", ("AMT_APPLICATION", "AMT_CREDIT")),
    },
    "POS_CASH_balance": {
        "LATE": Derived("flag", ("SK_DPD",)),
    },
    "installments_payments": {
        "PAYMENT_RATIO": Derived("ratio", ("AMT_PAYMENT", "AMT_INSTALMENT")),
        "PAYMENT_DIFF": Derived("difference", ("AMT_INSTALMENT", "AMT_PAYMENT")),
        "DPD": Derived("excess", ("DAYS_ENTRY_PAYMENT", "DAYS_INSTALMENT")),
        "DBD": Derived("excess", ("DAYS_INSTALMENT", "DAYS_ENTRY_PAYMENT")),
    },
    "credit_card_balance": {
        "UTILISATION": Derived("ratio", ("AMT_BALANCE", "AMT_CREDIT_LIMIT_ACTUAL")),
        "DRAWINGS_RATIO": Derived("ratio", ("AMT_DRAWINGS_CURRENT", "AMT_CREDIT_LIMIT_ACTUAL")),
        "PAYMENT_MIN_RATIO": Derived(
            "ratio", ("AMT_PAYMENT_TOTAL_CURRENT", "AMT_INST_MIN_REGULARITY")
        ),
        "LATE": Derived("flag", ("SK_DPD",)),
    },
}


@dataclass(frozen=True)
class Aggregation:
    """One output column: ``how`` (one of AGGREGATIONS, or ``share``) applied to ``column``.

    A share is the mean of ``column == level`` over all rows (``level`` None: of the column
    being missing); ``size`` counts rows and needs no column.
    """

    name: str
    column: str | None
    how: str
    level: str | None = None


@dataclass(frozen=True)
class Step:
    """Aggregations grouped by ``key``, over all rows or only those where column == level."""

    key: str
    aggregations: tuple[Aggregation, ...]
    where: tuple[str, str] | None = None


@dataclass(frozen=True)
class Group:
    """One table's part of the output; ``rollup`` is a child table's group joined onto its rows."""

    name: str
    table: str
    missing: Mapping[str, float]
    derived: tuple[str, ...]
    steps: tuple[Step, ...]
    rollup: Group | None = None

    @property
    def key(self) -> str:
        return self.steps[0].key

    @property
    def columns(self) -> list[str]:
        return [a.name for step in self.steps for a in step.aggregations]

    @property
    def tables(self) -> list[str]:
        return [self.table, *(self.rollup.tables if self.rollup else [])]

    @property
    def reads(self) -> set[str]:
        """The columns of ``table`` itself that the group reads (not derived, not rolled up)."""
        needed = {a.column for s in self.steps for a in s.aggregations if a.column}
        needed |= {c for d in self.derived for c in DERIVED[self.table][d].args}
        needed |= {s.where[0] for s in self.steps if s.where} | set(self.missing) | {self.key}
        if self.rollup is None:
            return needed - set(self.derived)
        return (needed | {self.rollup.key}) - set(self.derived) - set(self.rollup.columns)


def _name(*parts: str) -> str:
    return "_".join(p for p in parts if p).upper()


def share_labels(column: Column) -> list[tuple[str | None, str]]:
    """Each level of a categorical with its label in column names, then missing if nullable.

    Labels keep [A-Z0-9_] only and are made unique in the contract's order (``_2``, ``_3``...),
    so two levels that sanitise alike never collide and the labels never depend on the data.
    """
    labels: list[tuple[str | None, str]] = []
    seen: set[str] = set()
    for level in [*column.levels, *([None] if column.nullable else [])]:
        base = MISSING_LEVEL
        if level is not None:
            base = re.sub(r"[^A-Z0-9]+", "_", level.upper()).strip("_") or "BLANK"
        label, n = base, 1
        while label in seen:
            n += 1
            label = f"{base}_{n}"
        seen.add(label)
        labels.append((level, label))
    return labels


def _categorical(contract: Contract, table: str, column: str, group: str) -> Column:
    col = {c.name: c for c in contract[table].columns}.get(column)
    if col is None or col.dtype != CATEGORY:
        raise SpecError(f"{group}: {table}.{column} is not a categorical column")
    return col


def _plan_group(name: str, spec: Mapping[str, Any], contract: Contract, key: str) -> Group:
    typos = sorted(set(spec) - SPEC_KEYS)
    if typos:
        raise SpecError(f"{name}: unknown key(s) {typos}; use {sorted(SPEC_KEYS)}")
    table = spec["table"]
    if table not in contract:
        raise SpecError(f"{name}: unknown table {table!r}")
    rollup = None
    if spec.get("rollup"):
        rollup = _plan_group(f"{name}.rollup", spec["rollup"], contract, spec["rollup"]["key"])
    rolled = list(rollup.steps[0].aggregations) if rollup else []
    derived = DERIVED.get(table, {})
    clash = {a.name for a in rolled} & ({c.name for c in contract[table].columns} | set(derived))
    if clash:
        raise SpecError(f"{name}: the roll-up's columns {sorted(clash)} shadow {table}'s")
    own = {c.name for c in contract[table].columns if c.dtype != CATEGORY}
    numeric_ok = own | set(derived) | {a.name for a in rolled if a.how != "share"}
    prefix = spec.get("prefix", "")

    numeric = [(col, how) for col, hows in (spec.get("numeric") or {}).items() for how in hows]
    for col, how in numeric:
        if col not in numeric_ok:
            raise SpecError(f"{name}: {col} is not a numeric or derived column of {table}")
        if how not in AGGREGATIONS:
            raise SpecError(f"{name}: {col}: unknown aggregation {how!r}; use {AGGREGATIONS}")
    for col in spec.get("missing") or {}:
        if col not in own:
            raise SpecError(f"{name}: missing: {col} is not a numeric column of {table}")

    all_rows = [Aggregation(_name(prefix, col, how), col, how) for col, how in numeric]
    for col in spec.get("categorical") or ():
        from_rollup = [a for a in rolled if a.how == "share" and a.column == col]
        if from_rollup:  # per-credit shares, averaged over the applicant's credits
            all_rows += [Aggregation(_name(prefix, a.name), a.name, "mean") for a in from_rollup]
            continue
        levels = share_labels(_categorical(contract, table, col, name))
        all_rows += [
            Aggregation(_name(prefix, col, label, "MEAN"), col, "share", level)
            for level, label in levels
        ]
    if spec.get("count"):
        all_rows.append(Aggregation(_name(prefix, "COUNT"), None, "size"))

    steps = [Step(key, tuple(all_rows))]
    for subset, where in (spec.get("subsets") or {}).items():
        levels = _categorical(contract, table, where["column"], name).levels
        if where["level"] not in levels:
            raise SpecError(f"{name}: {subset}: {where['level']!r} is not a level of {levels}")
        aggregations = tuple(
            Aggregation(_name(prefix, subset, col, how), col, how) for col, how in numeric
        )
        steps.append(Step(key, aggregations, (where["column"], where["level"])))
    used = {col for col, _ in numeric}
    return Group(
        name=name,
        table=table,
        missing=dict(spec.get("missing") or {}),
        derived=tuple(d for d in derived if d in used),
        steps=tuple(steps),
        rollup=rollup,
    )


def scan_tables(raw_dir: Path, names: Sequence[str]) -> dict[str, pl.LazyFrame]:
    """Lazy scans of the raw tables, so polars reads only the columns the plan uses."""
    paths = {name: raw_dir / f"{name}.parquet" for name in names}
    for name, path in paths.items():
        if not path.is_file():
            raise SchemaError(name, None, f"{path} not found; run the download stage first")
    return {name: pl.scan_parquet(path) for name, path in paths.items()}


def load_specs(path: Path) -> dict[str, Any]:
    """The aggregation spec file: group name to spec (see ``aggregations.yaml``)."""
    if not path.is_file():
        raise SpecError(f"{path}: aggregation spec not found")
    try:
        specs = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(specs, dict):
        raise SpecError(f"{path}: expected a mapping of group name to spec")
    return specs


def plan_groups(
    specs: Mapping[str, Mapping[str, Any]],
    enabled: Sequence[str],
    contract: Contract | None = None,
) -> tuple[Group, ...]:
    """Turn the spec of the ``enabled`` groups into plans, or raise :class:`SpecError`.

    Checked against the contract before any data is read, so a typo in an experiment's
    override fails in a second, not after minutes of aggregation.
    """
    contract = contract or load_contract()
    unknown = [g for g in enabled if g not in specs]
    if unknown:
        raise SpecError(f"unknown aggregate group(s) {unknown}; defined: {list(specs)}")
    groups = tuple(_plan_group(g, specs[g], contract, KEY) for g in enabled)
    twice = [n for n, k in Counter(c for g in groups for c in g.columns).items() if k > 1]
    if twice:
        raise SpecError(f"column name(s) produced more than once: {twice[:5]}")
    return groups


def required_tables(groups: Sequence[Group]) -> list[str]:
    """The tables a plan reads, each once, in order."""
    return list(dict.fromkeys(t for g in groups for t in g.tables))


# --- polars: the stage's engine -------------------------------------------------------------


def _pl_derived(d: Derived) -> pl.Expr:
    a, *rest = (pl.col(c).cast(pl.Float64) for c in d.args)
    match d.op:
        case "ratio":
            return pl.when(rest[0] != 0).then(a / rest[0])
        case "difference":
            return a - rest[0]
        case "excess":
            return (a - rest[0]).clip(lower_bound=0)
        case "flag":
            return (a > 0).cast(pl.Float64)
    raise SpecError(f"unknown derived op {d.op!r}")


def _pl_aggregation(a: Aggregation) -> pl.Expr:
    col = pl.col(a.column) if a.column else None
    match a.how:
        case "size":
            expr = pl.len()
        case "share":
            expr = (col.is_null() if a.level is None else col.eq_missing(a.level)).mean()
        case "nunique":
            expr = col.drop_nulls().n_unique()
        case "sum":  # like pandas' min_count=1: the sum of nothing known is missing, not 0
            expr = pl.when(col.count() > 0).then(col.sum())
        case "var":
            expr = col.var(ddof=1)
        case _:
            expr = getattr(col, a.how)()
    return expr.cast(pl.Float64).alias(a.name)


def _pl_rows(tables: Mapping[str, pl.LazyFrame | pl.DataFrame], group: Group) -> pl.LazyFrame:
    frame = tables[group.table].lazy()
    absent = sorted(group.reads - set(frame.collect_schema().names()))
    if absent:
        raise SchemaError(
            group.table, absent[0], f"missing column(s) {absent}, used by {group.name}"
        )
    frame = frame.with_columns(
        pl.when(pl.col(c) != v).then(pl.col(c)).alias(c) for c, v in group.missing.items()
    )
    return frame.with_columns(_pl_derived(DERIVED[group.table][d]).alias(d) for d in group.derived)


def _pl_step(frame: pl.LazyFrame, step: Step) -> pl.LazyFrame:
    if step.where is not None:
        frame = frame.filter(pl.col(step.where[0]) == step.where[1])
    return frame.group_by(step.key).agg(_pl_aggregation(a) for a in step.aggregations)


def _pl_group(tables: Mapping[str, pl.LazyFrame | pl.DataFrame], group: Group) -> pl.LazyFrame:
    rows = _pl_rows(tables, group)
    if group.rollup is not None:
        rolled = _pl_group(tables, group.rollup)
        rows = rows.join(rolled, on=group.rollup.key, how="left")
    first, *subsets = (_pl_step(rows, step) for step in group.steps)
    return reduce(lambda a, b: a.join(b, on=group.key, how="left"), subsets, first)


def aggregate(
    tables: Mapping[str, pl.LazyFrame | pl.DataFrame], groups: Sequence[Group]
) -> pl.DataFrame:
    """One row per applicant with any history row: ``SK_ID_CURR`` ascending, then float64s.

    Each group runs as one lazy polars query (collected group by group, so the log says where
    the time goes); applicants a group does not see are missing in its columns.

    Raises:
        SchemaError: a table lacks a column the plan needs.
    """
    if not groups:  # the application-only model: no history at all
        return pl.DataFrame({KEY: pl.Series([], dtype=pl.Int64)})
    parts = []
    for group in groups:
        start = time.perf_counter()
        parts.append(_pl_group(tables, group).collect())
        log.info(
            "%s: %d columns for %d applicants in %.1f s",
            group.name,
            parts[-1].width - 1,
            parts[-1].height,
            time.perf_counter() - start,
        )
    # Align each part to the sorted union of applicants once, then glue them side by side:
    # cheaper than a chain of full joins and a sort, which copy the wide frame again each time.
    keys = pl.concat([part.select(KEY) for part in parts]).unique().sort(KEY)
    aligned = [keys.join(p, on=KEY, how="left", maintain_order="left").drop(KEY) for p in parts]
    columns = [c for g in groups for c in g.columns]
    joined = pl.concat([keys, *aligned], how="horizontal")
    out = joined.select(pl.col(KEY).cast(pl.Int64), pl.col(columns).cast(pl.Float64))
    return out.with_columns(pl.Series(name, canonical(out[name].to_numpy())) for name in columns)
