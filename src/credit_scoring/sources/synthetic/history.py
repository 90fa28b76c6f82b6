"""The six history tables, with consistent keys and the history latent showing through them.

Behaviour that predicts default in the genuine data (overdue bureau credits, months past due,
refused applications, late and short instalments, high card utilisation) is driven by the
applicant's history latent ``z_hist``, so it can only be read by aggregating these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import DAYS_PLACEHOLDER, Contract, Table
from credit_scoring.sources.synthetic.sampling import (
    Draws,
    Lean,
    calibrated_probability,
    codes_from_uniform,
    draw_counts,
    draw_table,
    draw_values,
    group_positions,
    keep_missing,
    numeric_from_uniform,
    ratio_from_uniform,
    to_frame,
)

FIRST_BUREAU_ID = 5_000_000
FIRST_PREV_ID = 1_000_001
DAYS_PER_MONTH = 30.4375
HISTORY_WEIGHT = 0.9

# Kaggle keeps monthly balances for only part of the bureau credits: 27,299,925 rows for
# 1,716,428 credits (15.9 a credit), while the sample, complete per applicant, shows 24.5.
# Thinning the months to the full files' ratio keeps synthetic_full at Kaggle's row counts.
BUREAU_BALANCE_PER_CREDIT = 27_299_925 / 1_716_428

# Shares of months or payments with a problem (genuine-data orders of magnitude).
RATES = {
    "bureau_months_past_due": 0.036,
    "pos_months_past_due": 0.025,
    "card_months_past_due": 0.03,
    "instalment_late": 0.08,
    "instalment_short": 0.05,
    "split_payment": 0.08,
}
BB_DPD_LEVELS = ("1", "2", "3", "4", "5")

BUREAU_LEANS = {
    "CREDIT_DAY_OVERDUE": Lean("hist", 0.6),
    "AMT_CREDIT_MAX_OVERDUE": Lean("hist", 0.4),
    "CNT_CREDIT_PROLONG": Lean("hist", 0.2),
    "CREDIT_ACTIVE": Lean("hist", 0.2),
}
BUREAU_ORDERS = {"CREDIT_ACTIVE": ["Closed", "Sold", "Active", "Bad debt"]}
PREVIOUS_LEANS = {"NAME_CONTRACT_STATUS": Lean("hist", 0.45)}
PREVIOUS_ORDERS = {"NAME_CONTRACT_STATUS": ["Approved", "Unused offer", "Canceled", "Refused"]}
PREVIOUS_APPROVAL_BLOCK = (
    "DAYS_FIRST_DRAWING",
    "DAYS_FIRST_DUE",
    "DAYS_LAST_DUE_1ST_VERSION",
    "DAYS_LAST_DUE",
    "DAYS_TERMINATION",
    "NFLAG_INSURED_ON_APPROVAL",
)
CARD_LEANS = {
    "AMT_DRAWINGS_ATM_CURRENT": Lean("hist", 0.3),
    "CNT_DRAWINGS_ATM_CURRENT": Lean("hist", 0.3),
}


@dataclass(frozen=True)
class Applicants:
    ids: np.ndarray
    z_hist: np.ndarray


@dataclass(frozen=True)
class Credits:
    """Which previous applications became credits, and their months of POS or card balance."""

    approved: np.ndarray
    pos_months: np.ndarray
    card_months: np.ndarray


def _codes(contract: Contract, table: str, column: str) -> dict[str, int]:
    return {lv: i for i, lv in enumerate(contract[table].column(column).levels)}


def _late_days(rng: np.random.Generator, late: np.ndarray, scale: float) -> np.ndarray:
    return np.where(late, np.ceil(rng.exponential(scale, len(late))), 0.0)


def _draw_children(
    table: Table,
    profile: Mapping,
    counts_key: str,
    applicants: Applicants,
    rng: np.random.Generator,
    leans: Mapping[str, Lean],
    orders: Mapping[str, list[str]],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of a table keyed by applicant: the genuine count per applicant, then the columns."""
    counts = draw_counts(profile["children"][counts_key], rng.random(len(applicants.ids)))
    parent, _ = group_positions(counts)
    draws = Draws(rng, len(parent), {"hist": applicants.z_hist[parent]})
    cols = draw_table(table, profile["tables"][table.name]["columns"], draws, leans, orders)
    cols["SK_ID_CURR"] = applicants.ids[parent].astype("float64")
    return cols, parent


def draw_bureau(
    contract: Contract,
    profile: Mapping,
    applicants: Applicants,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bureau credits per applicant and their monthly statuses."""
    table = contract["bureau"]
    cols, parent = _draw_children(
        table, profile, "bureau_per_applicant", applicants, rng, BUREAU_LEANS, BUREAU_ORDERS
    )
    n = len(parent)
    z = applicants.z_hist[parent]
    cols["SK_ID_BUREAU"] = FIRST_BUREAU_ID + np.arange(n, dtype="float64")

    closed = cols["CREDIT_ACTIVE"] == _codes(contract, "bureau", "CREDIT_ACTIVE")["Closed"]
    months = _bureau_months(profile, rng.random(n), rng.random(n))
    opened = np.minimum(cols["DAYS_CREDIT"], -np.ceil((months - 1) * DAYS_PER_MONTH))
    cols["DAYS_CREDIT"] = opened
    cols["DAYS_ENDDATE_FACT"] = np.where(
        closed, np.round(opened * rng.uniform(0.0, 0.95, n)), np.nan
    )
    cols["DAYS_CREDIT_ENDDATE"] = np.maximum(cols["DAYS_CREDIT_ENDDATE"], opened + 30)
    cols["DAYS_CREDIT_UPDATE"] = np.clip(cols["DAYS_CREDIT_UPDATE"], opened, 0)
    cols["CREDIT_DAY_OVERDUE"] = np.where(closed, 0.0, cols["CREDIT_DAY_OVERDUE"])
    debt_ratio = ratio_from_uniform(profile["relations"]["bureau"]["debt_to_credit"], rng.random(n))
    debt = np.where(closed, 0.0, np.round(cols["AMT_CREDIT_SUM"] * np.clip(debt_ratio, 0, 1.2), 2))
    cols["AMT_CREDIT_SUM_DEBT"] = keep_missing(debt, cols["AMT_CREDIT_SUM_DEBT"])
    overdue = cols["CREDIT_DAY_OVERDUE"] > 0
    cols["AMT_CREDIT_SUM_OVERDUE"] = np.where(
        overdue, np.round(np.nan_to_num(debt) * rng.uniform(0.02, 0.3, n), 2), 0.0
    )
    bureau = to_frame(table, cols)
    return bureau, _bureau_balance(contract, bureau, months, z, closed, rng)


def _bureau_months(profile: Mapping, u: np.ndarray, keep_u: np.ndarray) -> np.ndarray:
    """Months of balance per credit: the sample's distribution, thinned to Kaggle's ratio."""
    dist = profile["children"]["bureau_balance_per_bureau"]
    months = draw_counts(dist, u)
    mean = np.dot(dist["values"], dist["probs"]) / np.sum(dist["probs"])
    return np.where(keep_u < BUREAU_BALANCE_PER_CREDIT / mean, months, 0)


def _bureau_balance(
    contract: Contract,
    bureau: pd.DataFrame,
    months: np.ndarray,
    z: np.ndarray,
    closed: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Months end at 0; after a credit closes its status is C, before it 0, X or a DPD bucket."""
    parent, rank = group_positions(months)
    month = rank - months[parent] + 1
    close_month = np.where(
        closed, np.ceil(bureau["DAYS_ENDDATE_FACT"].fillna(0) / DAYS_PER_MONTH), 1
    )
    levels = _codes(contract, "bureau_balance", "STATUS")
    unknown_credit = rng.random(len(months)) < 0.2
    late = rng.random(len(parent)) < calibrated_probability(
        HISTORY_WEIGHT * z[parent], RATES["bureau_months_past_due"]
    )
    bucket = np.minimum(rng.geometric(0.75, len(parent)), len(BB_DPD_LEVELS)) - 1
    dpd_codes = np.array([levels[b] for b in BB_DPD_LEVELS], dtype="int8")
    status = np.where(late, dpd_codes[bucket], levels["0"]).astype("int8")
    status = np.where(unknown_credit[parent], levels["X"], status)
    status = np.where(month > close_month[parent], levels["C"], status)
    return pd.DataFrame(
        {
            "SK_ID_BUREAU": bureau["SK_ID_BUREAU"].to_numpy()[parent],
            "MONTHS_BALANCE": month.astype("int64"),
            "STATUS": pd.Categorical.from_codes(
                status, categories=list(contract["bureau_balance"].column("STATUS").levels)
            ),
        }
    )


def draw_previous(
    contract: Contract,
    profile: Mapping,
    applicants: Applicants,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, Credits]:
    """Previous Home Credit applications, and the monthly history their credits will have.

    A credit's months are drawn first and its decision date moved back to make room for
    them, so the genuine months-per-credit distribution survives intact.
    """
    stats = profile["tables"]["previous_application"]["columns"]
    table = contract["previous_application"]
    cols, parent = _draw_children(
        table, profile, "previous_per_applicant", applicants, rng, PREVIOUS_LEANS, PREVIOUS_ORDERS
    )
    n = len(parent)
    cols["SK_ID_PREV"] = FIRST_PREV_ID + np.arange(n, dtype="float64")

    status = _codes(contract, "previous_application", "NAME_CONTRACT_STATUS")
    approved = cols["NAME_CONTRACT_STATUS"] == status["Approved"]
    refused = cols["NAME_CONTRACT_STATUS"] == status["Refused"]
    reasons = _codes(contract, "previous_application", "CODE_REJECT_REASON")
    reject_stats = {
        "levels": {k: v for k, v in stats["CODE_REJECT_REASON"]["levels"].items() if k != "XAP"}
    }
    reject = codes_from_uniform(reject_stats, list(reasons), rng.random(n))
    cols["CODE_REJECT_REASON"] = np.where(refused, reject, reasons["XAP"]).astype("float64")

    relations = profile["relations"]["previous_application"]
    asked = cols["AMT_APPLICATION"]
    credit = np.round(
        asked * ratio_from_uniform(relations["credit_to_application"], rng.random(n)), 1
    )
    cols["AMT_CREDIT"] = credit
    annuity = np.round(
        credit * ratio_from_uniform(relations["annuity_to_credit"], rng.random(n)), 3
    )
    cols["AMT_ANNUITY"] = keep_missing(annuity, cols["AMT_ANNUITY"])
    goods = np.round(
        asked * ratio_from_uniform(relations["goods_to_application"], rng.random(n)), 1
    )
    cols["AMT_GOODS_PRICE"] = keep_missing(goods, cols["AMT_GOODS_PRICE"])

    children = profile["children"]
    card_months = np.where(
        approved, draw_counts(children["card_months_per_approved"], rng.random(n)), 0
    )
    pos_months = np.where(
        approved & (card_months == 0),
        draw_counts(children["pos_months_per_approved"], rng.random(n)),
        0,
    )
    months = card_months + pos_months
    cols["DAYS_DECISION"] = np.where(
        months > 0,
        np.minimum(cols["DAYS_DECISION"], -np.ceil((months + 1) * DAYS_PER_MONTH)),
        cols["DAYS_DECISION"],
    )
    revolving = _codes(contract, "previous_application", "NAME_CONTRACT_TYPE")["Revolving loans"]
    cols["NAME_CONTRACT_TYPE"] = np.where(card_months > 0, revolving, cols["NAME_CONTRACT_TYPE"])

    for name in PREVIOUS_APPROVAL_BLOCK:
        drawn = draw_values({**stats[name], "missing": 0.0}, rng.random(n), rng.random(n))
        cols[name] = np.where(approved, drawn, np.nan)
    decided = cols["DAYS_DECISION"]
    first_due = cols["DAYS_FIRST_DUE"]
    real_first_due = approved & (first_due != DAYS_PLACEHOLDER)
    cols["DAYS_FIRST_DUE"] = np.where(
        real_first_due, np.minimum(decided + rng.integers(10, 45, n), -1), first_due
    )
    payments = np.nan_to_num(cols["CNT_PAYMENT"], nan=12.0)
    first_due = cols["DAYS_FIRST_DUE"]
    planned_end = np.round(first_due + DAYS_PER_MONTH * np.maximum(payments - 1, 0))
    last_version = cols["DAYS_LAST_DUE_1ST_VERSION"]
    cols["DAYS_LAST_DUE_1ST_VERSION"] = np.where(
        real_first_due & (last_version != DAYS_PLACEHOLDER), planned_end, last_version
    )
    for name in ("DAYS_LAST_DUE", "DAYS_TERMINATION"):
        drawn = cols[name]
        cols[name] = np.where(
            real_first_due & (drawn != DAYS_PLACEHOLDER), np.maximum(drawn, first_due), drawn
        )
    credits = Credits(approved, pos_months[approved], card_months[approved])
    return to_frame(table, cols), credits


def draw_monthly(
    contract: Contract,
    profile: Mapping,
    previous: pd.DataFrame,
    credits: Credits,
    applicants: Applicants,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """POS-cash and card balances of approved credits, and the instalments paid on them."""
    prev = previous[credits.approved].reset_index(drop=True)
    z_prev = applicants.z_hist[np.searchsorted(applicants.ids, prev["SK_ID_CURR"].to_numpy())]
    first_month = np.ceil(prev["DAYS_DECISION"].to_numpy() / DAYS_PER_MONTH).astype("int64")
    pos = _pos_cash(contract, profile, prev, credits.pos_months, first_month, z_prev, rng)
    cards = _cards(contract, profile, prev, credits.card_months, z_prev, rng)
    return {
        "POS_CASH_balance": pos,
        "credit_card_balance": cards,
        "installments_payments": _instalments(contract, profile, pos, cards, prev, z_prev, rng),
    }


def _monthly_frame(
    contract: Contract,
    name: str,
    profile: Mapping,
    prev: pd.DataFrame,
    counts: np.ndarray,
    z_prev: np.ndarray,
    rng: np.random.Generator,
    leans: Mapping[str, Lean] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    parent, rank = group_positions(counts)
    z = z_prev[parent]
    cols = draw_table(
        contract[name],
        profile["tables"][name]["columns"],
        Draws(rng, len(parent), {"hist": z}),
        leans,
    )
    cols["SK_ID_PREV"] = prev["SK_ID_PREV"].to_numpy(dtype="float64")[parent]
    cols["SK_ID_CURR"] = prev["SK_ID_CURR"].to_numpy(dtype="float64")[parent]
    return cols, parent, rank


def _past_due(rng: np.random.Generator, z: np.ndarray, rate: str, scale: float) -> np.ndarray:
    late = rng.random(len(z)) < calibrated_probability(HISTORY_WEIGHT * z, RATES[rate])
    return _late_days(rng, late, scale)


def _pos_cash(contract, profile, prev, counts, first_month, z_prev, rng) -> pd.DataFrame:
    cols, parent, rank = _monthly_frame(
        contract, "POS_CASH_balance", profile, prev, counts, z_prev, rng
    )
    cols["MONTHS_BALANCE"] = (first_month[parent] + rank).astype("float64")
    planned = prev["CNT_PAYMENT"].to_numpy()[parent]
    planned = np.where(np.isnan(planned) | (planned < 1), cols["CNT_INSTALMENT"], planned)
    cols["CNT_INSTALMENT"] = keep_missing(planned, cols["CNT_INSTALMENT"])
    cols["CNT_INSTALMENT_FUTURE"] = keep_missing(
        np.maximum(planned - rank - 1, 0), cols["CNT_INSTALMENT_FUTURE"]
    )
    status = _codes(contract, "POS_CASH_balance", "NAME_CONTRACT_STATUS")
    drawn = cols["NAME_CONTRACT_STATUS"]
    cols["NAME_CONTRACT_STATUS"] = np.where(
        cols["CNT_INSTALMENT_FUTURE"] == 0,
        status["Completed"],
        np.where(drawn == status["Completed"], status["Active"], drawn),
    ).astype("float64")
    dpd = _past_due(rng, z_prev[parent], "pos_months_past_due", 20.0)
    cols["SK_DPD"] = dpd
    cols["SK_DPD_DEF"] = np.where(rng.random(len(dpd)) < 0.7, dpd, 0.0)
    return to_frame(contract["POS_CASH_balance"], cols)


def _cards(contract, profile, prev, counts, z_prev, rng) -> pd.DataFrame:
    stats = profile["tables"]["credit_card_balance"]["columns"]
    cols, parent, rank = _monthly_frame(
        contract, "credit_card_balance", profile, prev, counts, z_prev, rng, CARD_LEANS
    )
    n_cards = len(counts)
    cols["MONTHS_BALANCE"] = (rank - counts[parent]).astype("float64")
    limit = (
        np.round(numeric_from_uniform(stats["AMT_CREDIT_LIMIT_ACTUAL"], rng.random(n_cards)) / 4500)
        * 4500
    )
    util_u = Draws(rng, n_cards, {"hist": z_prev}).uniform("utilisation", Lean("hist", 0.75))
    utilisation = ratio_from_uniform(
        profile["relations"]["credit_card_balance"]["balance_to_limit"], util_u
    )
    monthly = np.clip(utilisation[parent] * rng.lognormal(0.0, 0.15, len(parent)), 0.0, 1.5)
    balance = np.round(limit[parent] * monthly, 3)
    cols["AMT_CREDIT_LIMIT_ACTUAL"] = limit[parent]
    cols["AMT_BALANCE"] = balance
    cols["AMT_RECEIVABLE_PRINCIPAL"] = np.round(balance * 0.96, 3)
    cols["AMT_RECIVABLE"] = balance
    cols["AMT_TOTAL_RECEIVABLE"] = balance
    cols["AMT_INST_MIN_REGULARITY"] = keep_missing(
        np.round(balance * 0.05, 3), cols["AMT_INST_MIN_REGULARITY"]
    )
    cols["AMT_DRAWINGS_CURRENT"] = np.nansum(
        [
            cols["AMT_DRAWINGS_ATM_CURRENT"],
            cols["AMT_DRAWINGS_POS_CURRENT"],
            cols["AMT_DRAWINGS_OTHER_CURRENT"],
        ],
        axis=0,
    )
    cols["CNT_INSTALMENT_MATURE_CUM"] = keep_missing(
        rank.astype("float64"), cols["CNT_INSTALMENT_MATURE_CUM"]
    )
    dpd = _past_due(rng, z_prev[parent], "card_months_past_due", 15.0)
    cols["SK_DPD"] = dpd
    cols["SK_DPD_DEF"] = np.where(rng.random(len(dpd)) < 0.5, dpd, 0.0)
    return to_frame(contract["credit_card_balance"], cols)


def _instalments(contract, profile, pos, cards, prev, z_prev, rng) -> pd.DataFrame:
    """One payment per POS month still within the plan and per second card month; some split."""
    pos_due = pos[pos["CNT_INSTALMENT_FUTURE"].fillna(0) < pos["CNT_INSTALMENT"].fillna(0)]
    card_due = cards[::2]
    prev_index = pd.Index(prev["SK_ID_PREV"])
    due = pd.concat(
        [
            pd.DataFrame(
                {
                    "prev": prev_index.get_indexer(frame["SK_ID_PREV"]),
                    "month": frame["MONTHS_BALANCE"].to_numpy(),
                    "card": card,
                    "amount": (frame["AMT_BALANCE"] * 0.05).to_numpy() if card else np.nan,
                }
            )
            for frame, card in ((pos_due, False), (card_due, True))
        ],
        ignore_index=True,
    ).sort_values(["prev", "month"], kind="stable")
    splits = rng.random(len(due)) < RATES["split_payment"]
    split_rows = np.repeat(splits, 1 + splits)
    due = due.loc[due.index.repeat(1 + splits)].reset_index(drop=True)

    n = len(due)
    p = due["prev"].to_numpy()
    z = z_prev[p]
    cols = draw_table(
        contract["installments_payments"],
        profile["tables"]["installments_payments"]["columns"],
        Draws(rng, n, {"hist": z}),
    )
    cols["SK_ID_PREV"] = prev["SK_ID_PREV"].to_numpy(dtype="float64")[p]
    cols["SK_ID_CURR"] = prev["SK_ID_CURR"].to_numpy(dtype="float64")[p]
    cols["NUM_INSTALMENT_VERSION"] = np.where(due["card"], 0.0, cols["NUM_INSTALMENT_VERSION"])
    first = due.groupby("prev")["month"].transform("min").to_numpy()
    cols["NUM_INSTALMENT_NUMBER"] = due["month"].to_numpy() - first + 1
    day = np.round(due["month"].to_numpy() * DAYS_PER_MONTH) - rng.integers(0, 28, n)
    cols["DAYS_INSTALMENT"] = np.minimum(day, -1)
    late = _past_due(rng, z, "instalment_late", 12.0)
    early = np.floor(rng.exponential(9.0, n))
    cols["DAYS_ENTRY_PAYMENT"] = np.minimum(
        cols["DAYS_INSTALMENT"] + np.where(late > 0, late, -early), -1
    )
    annuity = prev["AMT_ANNUITY"].to_numpy()[p]
    fallback = prev["AMT_CREDIT"].to_numpy()[p] / np.maximum(
        prev["CNT_PAYMENT"].fillna(12).to_numpy()[p], 1
    )
    amount = np.where(due["card"], due["amount"], np.where(np.isnan(annuity), fallback, annuity))
    amount = np.round(np.maximum(np.nan_to_num(amount), 0.0), 3)
    short = rng.random(n) < calibrated_probability(HISTORY_WEIGHT * z, RATES["instalment_short"])
    paid = np.where(short, amount * rng.uniform(0.1, 0.9, n), amount)
    cols["AMT_INSTALMENT"] = amount
    cols["AMT_PAYMENT"] = np.round(np.where(split_rows, paid / 2, paid), 3)
    return to_frame(contract["installments_payments"], cols)
