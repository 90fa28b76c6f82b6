"""The aggregate stage on Dask: the local plan, run on each partition of applicants.

Every history table is read as a partitioned frame and range-partitioned by applicant on the
same divisions (a table keyed by credit, bureau_balance, first learns each credit's applicant
from its parent table). Partition ``i`` of every table then holds all the history of the same
applicants, and :func:`~credit_scoring.features.aggregates.aggregate`, the local engine itself,
runs on it. Its canonical rounding makes the values those of the local engine, bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import polars as pl

from credit_scoring.contract.tables import KEY
from credit_scoring.engine.frames import SHUFFLE, applicant_divisions, by_applicant, read_frame
from credit_scoring.features.aggregates import Group, aggregate, required_tables, scan_tables


def _history(raw_dir: Path, groups: Sequence[Group]) -> tuple[dict[str, dd.DataFrame], list[str]]:
    """Each table the plan reads (only the columns it uses), every one with the applicant's key,
    and the names of those that have it themselves (a child table borrows its parent's)."""
    columns: dict[str, set[str]] = {name: set() for name in required_tables(groups)}
    parents: dict[str, tuple[str, str]] = {}  # a child table: its parent and the key to it

    def collect(group: Group) -> None:
        columns[group.table] |= group.reads
        if group.rollup is not None:
            parents[group.rollup.table] = (group.table, group.rollup.key)
            collect(group.rollup)

    for group in groups:
        collect(group)
        columns[group.table].add(KEY)
    scans = scan_tables(raw_dir, list(columns))  # the local engine's check that each is there
    tables = {}
    for name, used in columns.items():
        present = set(scans[name].collect_schema().names())  # an absent one: the plan's check
        tables[name] = read_frame(raw_dir / f"{name}.parquet", columns=sorted(used & present))
    for child, (parent, key) in parents.items():  # parents come first in required_tables
        credits = tables[parent][[key, KEY]]
        tables[child] = tables[child].merge(credits, on=key, how="inner", shuffle_method=SHUFFLE)
    return tables, [name for name in tables if name not in parents]


def _aggregate_partition(
    *parts: pd.DataFrame, names: Sequence[str], groups: Sequence[Group]
) -> pd.DataFrame:
    tables = {
        name: pl.from_pandas(part.reset_index()) for name, part in zip(names, parts, strict=True)
    }
    return aggregate(tables, groups).to_pandas().set_index(KEY)


def _empty_output(tables: dict[str, dd.DataFrame], groups: Sequence[Group]) -> pd.DataFrame:
    """The output's empty frame, from the local engine run on the tables' empty ones; that run
    also checks every column the plan reads, before any work. Its log lines are no news here."""
    quiet = logging.getLogger(aggregate.__module__)
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        empty = [frame._meta.set_index(KEY) for frame in tables.values()]
        return _aggregate_partition(*empty, names=list(tables), groups=groups)
    finally:
        quiet.setLevel(level)


def aggregate_partitioned(
    raw_dir: Path, groups: Sequence[Group], *, partition_size: int
) -> dd.DataFrame:
    """The aggregates of ``groups``, one partition per ``partition_size`` applicants, lazily.

    Indexed by applicant, in ascending order; the columns and values are those of the local
    :func:`~credit_scoring.features.aggregates.aggregate`.

    Raises:
        SchemaError: a table is missing, or lacks a column the plan needs (before any work).
    """
    tables, keyed = _history(raw_dir, groups)
    names = list(tables)
    meta = _empty_output(tables, groups)
    keys = dd.concat([tables[name][KEY] for name in keyed]).unique().compute()
    divisions = applicant_divisions(keys.to_numpy(), partition_size)
    parts = [by_applicant(frame, divisions) for frame in tables.values()]
    return dd.map_partitions(_aggregate_partition, *parts, names=names, groups=groups, meta=meta)
