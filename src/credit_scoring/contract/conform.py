"""The data contract enforced on whole tables (DataFrames).

Every source's output passes :func:`conform_table`, so the synthetic generator, the local files
and the Kaggle download are held to one standard.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import (
    CATEGORY,
    FLOAT,
    INT,
    Column,
    Contract,
    SchemaError,
    load_contract,
)

log = logging.getLogger(__name__)


def _first_offender(series: pd.Series, bad: pd.Series) -> str:
    idx = np.flatnonzero(bad.to_numpy())
    value = series.iloc[idx[0]]
    value = value.item() if isinstance(value, np.generic) else value
    return f"{int(bad.sum())} bad value(s), first {value!r} at row {idx[0]}"


def _duplicated(frame: pd.DataFrame, key: tuple[str, ...]) -> np.ndarray:
    """Duplicate keys through one int64 code per row: hashing a 27M-row pair of columns is slow."""
    codes = np.zeros(len(frame), dtype="int64")
    for name in key:
        col_codes, uniques = pd.factorize(frame[name])
        codes = codes * len(uniques) + col_codes
    return pd.Series(codes).duplicated().to_numpy()


def _coerce_numeric(table: str, col: Column, series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        raise SchemaError(table, col.name, f"expected {col.dtype}, found dtype {series.dtype}")
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.astype("float64")
    else:
        numbers = pd.to_numeric(series, errors="coerce")
        unparsed = numbers.isna() & series.notna()
        if unparsed.any():
            raise SchemaError(
                table, col.name, f"expected {col.dtype}, {_first_offender(series, unparsed)}"
            )
    missing = numbers.isna()
    if missing.any() and not col.nullable:
        raise SchemaError(table, col.name, f"{int(missing.sum())} missing value(s), not allowed")
    if not np.isfinite(numbers[~missing].to_numpy()).all():
        raise SchemaError(table, col.name, "infinite values are not allowed")
    if col.dtype == INT:
        fractional = numbers % 1 != 0
        if fractional.any():
            raise SchemaError(
                table, col.name, f"expected int64, {_first_offender(series, fractional)}"
            )
    if col.limits:
        outside = pd.Series(col.limits.outside(numbers.to_numpy()), index=series.index)
        if outside.any():
            raise SchemaError(
                table,
                col.name,
                f"values must be {col.limits.describe()}, {_first_offender(series, outside)}",
            )
    return numbers.astype("float64") if col.dtype == FLOAT else numbers.astype("int64")


def _coerce_category(table: str, col: Column, series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not series.isna().all():
        raise SchemaError(table, col.name, f"expected category labels, found dtype {series.dtype}")
    if isinstance(series.dtype, pd.CategoricalDtype):
        coded = series.cat.set_categories(list(col.levels))
    else:
        coded = pd.Series(pd.Categorical(series, categories=list(col.levels)), index=series.index)
    unknown = coded.isna() & series.notna()
    if unknown.any():
        levels = sorted(map(str, series[unknown].unique()))
        raise SchemaError(
            table, col.name, f"unknown level(s) {levels[:5]}; allowed: {list(col.levels)}"
        )
    missing = int(coded.isna().sum())
    if missing and not col.nullable:
        raise SchemaError(table, col.name, f"{missing} missing value(s), not allowed")
    return coded.rename(col.name)


def conform_table(name: str, frame: pd.DataFrame, contract: Contract | None = None) -> pd.DataFrame:
    """Return ``frame`` cast to the contract's dtypes, or raise :class:`SchemaError`.

    Checks, in this order: the table is known and not empty, the columns are exactly the
    contract's (missing and extra ones named), each column's type, nullability, levels and
    hard limits (a normalised score in [0, 1], an amount at least 0...), then the primary key.
    Column order is taken from the contract.
    """
    contract = contract or load_contract()
    if name not in contract:
        raise SchemaError(name, None, f"unknown table; expected one of {list(contract)}")
    table = contract[name]
    if frame.empty:
        raise SchemaError(name, None, "the table is empty")
    missing = [c for c in table.names if c not in frame.columns]
    if missing:
        raise SchemaError(name, missing[0], f"missing column(s) {missing}")
    extra = [c for c in frame.columns if c not in table.names]
    if extra:
        raise SchemaError(name, str(extra[0]), f"unexpected column(s) {extra}")
    out = {}
    for col in table.columns:
        series = frame[col.name]
        if col.dtype == CATEGORY:
            out[col.name] = _coerce_category(name, col, series)
        else:
            out[col.name] = _coerce_numeric(name, col, series)
    result = pd.DataFrame(out).reset_index(drop=True)
    if table.primary_key:
        dupes = _duplicated(result, table.primary_key)
        if dupes.any():
            first = result.loc[int(np.argmax(dupes)), list(table.primary_key)]
            row = {k: v.item() if isinstance(v, np.generic) else v for k, v in first.items()}
            raise SchemaError(
                name,
                ",".join(table.primary_key),
                f"{int(dupes.sum())} duplicate key(s), first {row}",
            )
    return result


def check_foreign_keys(
    tables: dict[str, pd.DataFrame], contract: Contract | None = None
) -> dict[str, int]:
    """Count, per foreign key, the rows that reference no parent row.

    The genuine Kaggle files have such orphans (card balances of credits missing from
    previous_application, for one), so this measures rather than rejects; the synthetic
    generator is tested to produce none.
    """
    contract = contract or load_contract()
    orphans: dict[str, int] = {}
    for name, table in contract.items():
        for fk in table.foreign_keys:
            (column,) = fk.columns
            parents = pd.concat([tables[p][column] for p in fk.table.split("|")]).unique()
            n = int((~tables[name][column].isin(parents)).sum())
            orphans[f"{name}.{column}"] = n
            if n:
                log.warning("%s: %d row(s) reference no %s row", name, n, fk.table)
    return orphans
