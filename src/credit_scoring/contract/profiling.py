"""Derive the data contract and the generator's statistics from genuine Kaggle files.

Run by maintainers, never by the pipeline::

    python -m credit_scoring.contract.profiling <dir with the CSVs> src/credit_scoring/contract

Only derived facts are written (column order, dtypes, levels, hard limits, missing rates,
quantiles, count distributions); no row of the genuine files leaves this function. The hard
limits come from :data:`LIMITS`, the columns' meanings written down by hand, and are checked
here against every genuine row.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import (
    CATEGORY,
    DAYS_PLACEHOLDER,
    FLOAT,
    INT,
    TABLES,
    Limits,
)

log = logging.getLogger(__name__)

N_QUANTILES = 201
MAX_DISCRETE = 50
N_COMPLETE = 5000

PRIMARY_KEYS = {
    "application_train": ["SK_ID_CURR"],
    "application_test": ["SK_ID_CURR"],
    "bureau": ["SK_ID_BUREAU"],
    "bureau_balance": ["SK_ID_BUREAU", "MONTHS_BALANCE"],
    "previous_application": ["SK_ID_PREV"],
}
APPLICANTS = "application_train|application_test"
FOREIGN_KEYS = {
    "bureau": [(["SK_ID_CURR"], APPLICANTS)],
    "bureau_balance": [(["SK_ID_BUREAU"], "bureau")],
    "previous_application": [(["SK_ID_CURR"], APPLICANTS)],
    "POS_CASH_balance": [(["SK_ID_PREV"], "previous_application"), (["SK_ID_CURR"], APPLICANTS)],
    "credit_card_balance": [
        (["SK_ID_PREV"], "previous_application"),
        (["SK_ID_CURR"], APPLICANTS),
    ],
    "installments_payments": [
        (["SK_ID_PREV"], "previous_application"),
        (["SK_ID_CURR"], APPLICANTS),
    ],
}

# Levels that occur in the full Kaggle files but are too rare to be in the sample (counts from
# the full files' value counts, as published in the competition's public kernels). Leaving them
# out would make the contract reject the genuine full data.
RARE_LEVELS = {
    "application": {
        "CODE_GENDER": ["XNA"],
        "NAME_INCOME_TYPE": ["Businessman", "Maternity leave", "Student", "Unemployed"],
        "NAME_FAMILY_STATUS": ["Unknown"],
    },
    "bureau": {
        "CREDIT_ACTIVE": ["Bad debt"],
        "CREDIT_CURRENCY": ["currency 4"],
        "CREDIT_TYPE": [
            "Interbank credit",
            "Loan for purchase of shares (margin lending)",
            "Mobile operator loan",
            "Real estate loan",
        ],
    },
    "previous_application": {
        "NAME_CASH_LOAN_PURPOSE": [
            "Buying a garage",
            "Business development",
            "Gasification / water supply",
            "Hobby",
            "Money for a third person",
            "Refusal to name the goal",
        ],
        "NAME_GOODS_CATEGORY": [
            "Additional Service",
            "Animals",
            "Direct Sales",
            "Education",
            "Fitness",
            "House Construction",
            "Insurance",
            "Medicine",
            "Office Appliances",
            "Tourism",
            "Weapon",
        ],
    },
    "POS_CASH_balance": {"NAME_CONTRACT_STATUS": ["XNA"]},
    "credit_card_balance": {"NAME_CONTRACT_STATUS": ["Approved", "Demand"]},
}
RARE_FREQUENCY = 1e-5

# Hard limits: what a column's meaning allows, from HomeCredit_columns_description.csv, so that
# no genuine row breaks them (derive() refuses a limit the genuine rows break). The first rule
# whose pattern matches the whole name of a numeric column gives its limits; categories have
# their levels instead. History tables get only the limits that are safe on the full files: their
# amounts and several of their DAYS_* go negative or into the future there (card balances,
# bureau debts and limits, the remaining term DAYS_CREDIT_ENDDATE), so those are left free.
YEAR = 365.25
LIMITS: dict[str, list[tuple[str, dict]]] = {
    "application": [
        # "normalized" in the descriptions: the external scores, the region's population and the
        # building block (average, mode and median of each measure).
        (r"EXT_SOURCE_\d|REGION_POPULATION_RELATIVE|\w+_(AVG|MODE|MEDI)", {"min": 0, "max": 1}),
        # Age: an applicant is an adult, and younger than 100 (the genuine ones are 20 to 69).
        ("DAYS_BIRTH", {"min": -100 * YEAR, "max": -18 * YEAR}),
        # Days before the application; 365243 is Home Credit's "not employed" (pensioners).
        ("DAYS_EMPLOYED", {"max": 0, "allowed_extra": [DAYS_PLACEHOLDER]}),
        (r"DAYS_\w+", {"max": 0}),
        # "Our rating of the region (1,2,3)"; the full application_test holds one -1, kept so
        # the genuine file passes (public kernels set it to missing).
        ("REGION_RATING_CLIENT", {"values": [1, 2, 3]}),
        ("REGION_RATING_CLIENT_W_CITY", {"values": [1, 2, 3], "allowed_extra": [-1]}),
        # Flags: "1=YES, 0=NO", "1=different, 0=same".
        (r"FLAG_\w+|(REG|LIVE)_(REGION|CITY)_NOT_\w+", {"values": [0, 1]}),
        ("HOUR_APPR_PROCESS_START", {"min": 0, "max": 23}),
        # Counts and amounts: children, family, income, credit, enquiries, social-circle
        # observations, the car's age.
        (r"(CNT|AMT)_\w+|OWN_CAR_AGE|(OBS|DEF)_\d+_CNT_SOCIAL_CIRCLE", {"min": 0}),
    ],
    "bureau": [
        ("DAYS_CREDIT", {"max": 0}),
        ("CREDIT_DAY_OVERDUE|CNT_CREDIT_PROLONG", {"min": 0}),
    ],
    "bureau_balance": [("MONTHS_BALANCE", {"max": 0})],
    "previous_application": [
        ("DAYS_DECISION", {"max": 0}),
        ("HOUR_APPR_PROCESS_START", {"min": 0, "max": 23}),
        ("CNT_PAYMENT", {"min": 0}),
    ],
    "POS_CASH_balance": [
        ("MONTHS_BALANCE", {"max": 0}),
        (r"CNT_\w+|SK_DPD|SK_DPD_DEF", {"min": 0}),
    ],
    "credit_card_balance": [
        ("MONTHS_BALANCE", {"max": 0}),
        (r"CNT_\w+|SK_DPD|SK_DPD_DEF", {"min": 0}),
    ],
    "installments_payments": [(r"NUM_INSTALMENT_\w+", {"min": 0})],
}


def limits_of(table: str, name: str) -> dict:
    """The hard limits of a numeric column (``min``, ``max``, ``values``, ``allowed_extra``)."""
    for pattern, limits in LIMITS.get(_family(table), []):
        if re.fullmatch(pattern, name):
            return dict(limits)
    return {}


# Ratios the generator needs to keep related columns plausible together.
RELATIONS = {
    "application": {
        "annuity_to_credit": ("AMT_ANNUITY", "AMT_CREDIT"),
        "goods_to_credit": ("AMT_GOODS_PRICE", "AMT_CREDIT"),
    },
    "previous_application": {
        "credit_to_application": ("AMT_CREDIT", "AMT_APPLICATION"),
        "annuity_to_credit": ("AMT_ANNUITY", "AMT_CREDIT"),
        "goods_to_application": ("AMT_GOODS_PRICE", "AMT_APPLICATION"),
    },
    "bureau": {"debt_to_credit": ("AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM")},
    "credit_card_balance": {"balance_to_limit": ("AMT_BALANCE", "AMT_CREDIT_LIMIT_ACTUAL")},
}


def _family(table: str) -> str:
    return "application" if table.startswith("application_") else table


def _sig(values: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def _quantiles(values: pd.Series) -> list[float]:
    values = values.dropna().to_numpy(dtype="float64")
    return _sig(np.quantile(values, np.linspace(0, 1, N_QUANTILES))) if len(values) else []


def _dtype(series: pd.Series) -> str:
    if series.dtype == object:
        return CATEGORY
    return INT if pd.api.types.is_integer_dtype(series) else FLOAT


def _levels(table: str, name: str, series: pd.Series, seen: pd.Series) -> dict[str, float]:
    freq = series.value_counts(normalize=True, dropna=True)
    freq = freq.reindex(pd.unique(seen.dropna()), fill_value=RARE_FREQUENCY)
    levels = {str(k): round(float(v), 6) for k, v in freq.items()}
    for level in RARE_LEVELS.get(_family(table), {}).get(name, []):
        levels.setdefault(level, RARE_FREQUENCY)
    return dict(sorted(levels.items()))


def describe_column(
    table: str, name: str, series: pd.Series, seen: pd.Series | None = None
) -> tuple[dict, dict]:
    """Return the column's contract entry and its generator statistics.

    ``seen`` holds every value the column takes in its table family (train and test share
    one contract), so levels and nullability cover both.
    """
    seen = series if seen is None else seen
    dtype = _dtype(series)
    contract: dict = {"name": name, "dtype": dtype, "nullable": bool(seen.isna().any())}
    stats: dict = {"missing": round(float(series.isna().mean()), 6)}
    if dtype == CATEGORY:
        levels = _levels(table, name, series, seen)
        contract["levels"] = list(levels)
        stats["levels"] = levels
        return contract, stats
    if dtype == FLOAT:
        contract["nullable"] = True
    contract.update({"values": [0, 1]} if name == "TARGET" else limits_of(table, name))
    _check_limits(table, contract, seen)
    sentinel = series == DAYS_PLACEHOLDER
    if sentinel.any():
        stats["sentinel"] = round(float(sentinel.mean()), 6)
        series = series[~sentinel]
    present = series.dropna()
    if dtype == FLOAT and len(present) and (present % 1 == 0).all():
        stats["integral"] = True
    distinct = present.value_counts(normalize=True).sort_index()
    if len(distinct) <= MAX_DISCRETE:
        stats["values"] = _sig(distinct.index.to_numpy(dtype="float64"))
        stats["probs"] = [round(float(p), 6) for p in distinct.to_numpy()]
    else:
        stats["quantiles"] = _quantiles(series)
    return contract, stats


def _check_limits(table: str, entry: dict, seen: pd.Series) -> None:
    """Refuse a limit that a genuine value breaks: a hard limit is one no genuine row breaks."""
    limits = Limits.from_dict(entry)
    bad = limits.outside(seen.to_numpy(dtype="float64"))
    if bad.any():
        raise ValueError(
            f"{table}.{entry['name']}: the limit {limits.describe()} is broken by "
            f"{int(bad.sum())} genuine value(s)"
        )


def missing_groups(frame: pd.DataFrame, min_correlation: float = 0.9) -> dict[str, int]:
    """Group columns that go missing together (e.g. the building block of the applications).

    A column joins the first earlier group whose founder's missing indicator correlates with
    its own above ``min_correlation``; the generator then draws one uniform per row per group,
    which reproduces the co-missingness.
    """
    indicators = frame.isna()
    candidates = [c for c in frame.columns if 0 < indicators[c].mean() < 1]
    founders: list[str] = []
    groups: dict[str, int] = {}
    for col in candidates:
        x = indicators[col].to_numpy(dtype="float64")
        for gid, founder in enumerate(founders):
            y = indicators[founder].to_numpy(dtype="float64")
            if np.corrcoef(x, y)[0, 1] >= min_correlation:
                groups[col] = gid
                break
        else:
            groups[col] = len(founders)
            founders.append(col)
    return groups


def _count_distribution(counts: pd.Series) -> dict[str, list[float]]:
    freq = counts.value_counts(normalize=True).sort_index()
    return {
        "values": [int(v) for v in freq.index],
        "probs": [round(float(p), 6) for p in freq.to_numpy()],
    }


def describe_children(raw: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per-parent record counts (zeros included), over the applicants the sample holds whole."""
    complete = pd.concat(
        [
            raw["application_train"].SK_ID_CURR.iloc[:N_COMPLETE],
            raw["application_test"].SK_ID_CURR.iloc[:N_COMPLETE],
        ]
    )

    def per_parent(child: pd.DataFrame, key: str, parents: pd.Series) -> dict:
        counts = child[key].value_counts().reindex(parents.to_numpy(), fill_value=0)
        return _count_distribution(counts)

    bureau = raw["bureau"][raw["bureau"].SK_ID_CURR.isin(complete)]
    prev = raw["previous_application"][raw["previous_application"].SK_ID_CURR.isin(complete)]
    approved = prev[prev.NAME_CONTRACT_STATUS == "Approved"].SK_ID_PREV
    return {
        "bureau_per_applicant": per_parent(raw["bureau"], "SK_ID_CURR", complete),
        "bureau_balance_per_bureau": per_parent(
            raw["bureau_balance"], "SK_ID_BUREAU", bureau.SK_ID_BUREAU
        ),
        "previous_per_applicant": per_parent(raw["previous_application"], "SK_ID_CURR", complete),
        "pos_months_per_approved": per_parent(raw["POS_CASH_balance"], "SK_ID_PREV", approved),
        "card_months_per_approved": per_parent(raw["credit_card_balance"], "SK_ID_PREV", approved),
    }


def describe_relations(raw: dict[str, pd.DataFrame]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for family, ratios in RELATIONS.items():
        frame = raw["application_train"] if family == "application" else raw[family]
        out[family] = {}
        for name, (num, den) in ratios.items():
            ratio = frame[num] / frame[den].where(frame[den] > 0)
            out[family][name] = _quantiles(ratio.replace([np.inf, -np.inf], np.nan))
    return out


def derive(raw: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    """Return the contract and the generator profile for the given genuine tables."""
    contract: dict = {"tables": {}}
    profile: dict = {"tables": {}}
    for table in TABLES:
        frame = raw[table]
        columns, stats = [], {}
        family = [raw[t] for t in TABLES if _family(t) == _family(table)]
        for name in frame.columns:
            seen = pd.concat([f[name] for f in family if name in f.columns])
            col_contract, col_stats = describe_column(table, name, frame[name], seen)
            columns.append(col_contract)
            stats[name] = col_stats
        for name, gid in missing_groups(frame).items():
            stats[name]["missing_group"] = gid
        contract["tables"][table] = {
            "primary_key": PRIMARY_KEYS.get(table, []),
            "foreign_keys": [{"columns": c, "table": t} for c, t in FOREIGN_KEYS.get(table, [])],
            "columns": columns,
        }
        profile["tables"][table] = {"rows_in_sample": len(frame), "columns": stats}
    profile["children"] = describe_children(raw)
    profile["relations"] = describe_relations(raw)
    return contract, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="directory holding the genuine Kaggle CSVs")
    parser.add_argument("out", type=Path, help="directory for contract.json and profile.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raw = {t: pd.read_csv(args.source / f"{t}.csv") for t in TABLES}
    contract, profile = derive(raw)
    for name, payload in (("contract.json", contract), ("profile.json", profile)):
        path = args.out / name
        path.write_text(json.dumps(payload, indent=1) + "\n")
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
