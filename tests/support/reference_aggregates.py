"""The aggregation plan run with plain pandas groupbys, the way the public kernels do it.

The yardstick, not the product: the stage runs polars (:func:`~credit_scoring.features.
aggregates.aggregate`); ``tests/test_aggregate.py`` holds it to this engine value by value on the
same plan, and ``benchmarks/aggregate.py`` measures how much polars saves over it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from credit_scoring.contract.tables import KEY
from credit_scoring.features.aggregates import DERIVED, Derived, Group, SpecError, Step

_PANDAS_OPTIONS = {"sum": {"min_count": 1}, "var": {"ddof": 1}, "nunique": {"dropna": True}}


def _pd_derived(frame: pd.DataFrame, d: Derived) -> pd.Series:
    a, *rest = (frame[c].astype("float64") for c in d.args)
    match d.op:
        case "ratio":
            return a / rest[0].where(rest[0] != 0)
        case "difference":
            return a - rest[0]
        case "excess":
            return (a - rest[0]).clip(lower=0)
        case "flag":
            return (a > 0).astype("float64").where(a.notna())
    raise SpecError(f"unknown derived op {d.op!r}")


def _pd_rows(frame: pd.DataFrame, group: Group) -> pd.DataFrame:
    if group.missing:
        frame = frame.assign(**{c: frame[c].mask(frame[c] == v) for c, v in group.missing.items()})
    if group.derived:
        frame = frame.assign(
            **{d: _pd_derived(frame, DERIVED[group.table][d]) for d in group.derived}
        )
    return frame


def _pd_step(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    if step.where is not None:
        frame = frame[frame[step.where[0]] == step.where[1]]
    indicators = {
        a.name: (frame[a.column].isna() if a.level is None else frame[a.column] == a.level)
        for a in step.aggregations
        if a.how == "share"
    }
    data = pd.concat([frame, pd.DataFrame(indicators, index=frame.index)], axis=1)
    grouped = data.groupby(step.key)
    out = {}
    for a in step.aggregations:
        if a.how == "size":
            out[a.name] = grouped.size()
        elif a.how == "share":
            out[a.name] = grouped[a.name].mean()
        else:
            out[a.name] = getattr(grouped[a.column], a.how)(**_PANDAS_OPTIONS.get(a.how, {}))
    return pd.DataFrame(out)


def _pd_group(tables: Mapping[str, pd.DataFrame], group: Group) -> pd.DataFrame:
    rows = _pd_rows(tables[group.table], group)
    if group.rollup is not None:
        rows = rows.join(_pd_group(tables, group.rollup), on=group.rollup.key)
    return pd.concat([_pd_step(rows, step) for step in group.steps], axis=1)


def aggregate_reference(
    tables: Mapping[str, pd.DataFrame], groups: Sequence[Group]
) -> pd.DataFrame:
    """The same plan with plain pandas groupbys, the way the public kernels do it.

    Slower and hungrier than :func:`aggregate`; it exists so the tests can check polars value
    by value and the benchmark can say how much polars saves.
    """
    joined = pd.concat([_pd_group(tables, g) for g in groups], axis=1, join="outer")
    return joined.sort_index().astype("float64").rename_axis(KEY).reset_index()
