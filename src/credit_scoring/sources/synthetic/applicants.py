"""The application tables: genuine marginals, the known quirks, and risk that shows in the data."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import DAYS_PLACEHOLDER, Table
from credit_scoring.sources.synthetic.sampling import (
    Draws,
    Lean,
    draw_table,
    keep_missing,
    numeric_from_uniform,
    ratio_from_uniform,
    to_frame,
)

FIRST_ID = 100001
ADULT_DAYS = 18 * 365
PENSION_TYPES = ("Pensioner", "Unemployed")

# How application columns lean on the applicant-visible latent risk ("app"); signs follow the
# genuine data (lower EXT_SOURCE, younger, shorter employment, lower income: riskier).
APPLICATION_LEANS = {
    "EXT_SOURCE_1": Lean("app", -0.50),
    "EXT_SOURCE_2": Lean("app", -0.60),
    "EXT_SOURCE_3": Lean("app", -0.60),
    "DAYS_BIRTH": Lean("app", 0.20),
    "DAYS_EMPLOYED": Lean("app", 0.15),
    "DAYS_ID_PUBLISH": Lean("app", 0.10),
    "DAYS_LAST_PHONE_CHANGE": Lean("app", 0.10),
    "AMT_INCOME_TOTAL": Lean("app", -0.15),
    "AMT_CREDIT": Lean("app", 0.05),
    "REGION_RATING_CLIENT": Lean("app", 0.15),
    "REGION_RATING_CLIENT_W_CITY": Lean("app", 0.15),
    "DEF_30_CNT_SOCIAL_CIRCLE": Lean("app", 0.10),
    "DEF_60_CNT_SOCIAL_CIRCLE": Lean("app", 0.10),
    "CODE_GENDER": Lean("app", 0.10),
    "NAME_EDUCATION_TYPE": Lean("app", 0.20),
    "FLAG_OWN_CAR": Lean("app", 0.05),
}
# Level orders for leaning categoricals: the riskier levels last.
APPLICATION_ORDERS = {
    "CODE_GENDER": ["F", "XNA", "M"],
    "NAME_EDUCATION_TYPE": [
        "Academic degree",
        "Higher education",
        "Incomplete higher",
        "Secondary / secondary special",
        "Lower secondary",
    ],
    "FLAG_OWN_CAR": ["Y", "N"],
}


def draw_applications(
    table: Table,
    stats: Mapping[str, Mapping],
    relations: Mapping[str, list[float]],
    ids: np.ndarray,
    latents: Mapping[str, np.ndarray],
    target: np.ndarray | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Draw one application table for the applicants ``ids`` with the given latent risks."""
    draws = Draws(rng=rng, n=len(ids), latents=latents)
    cols = draw_table(table, stats, draws, APPLICATION_LEANS, APPLICATION_ORDERS)
    levels = {c.name: list(c.levels) for c in table.columns if c.levels}

    def code(column: str, level: str) -> int:
        return levels[column].index(level)

    cols["SK_ID_CURR"] = ids.astype("float64")
    if target is not None:
        cols["TARGET"] = target.astype("float64")

    # Pensioners: DAYS_EMPLOYED = 365243, organisation XNA, no employer phone, older.
    income_type = cols["NAME_INCOME_TYPE"]
    retired = np.isin(income_type, [code("NAME_INCOME_TYPE", t) for t in PENSION_TYPES])
    employed_u = draws.uniform("DAYS_EMPLOYED", APPLICATION_LEANS["DAYS_EMPLOYED"])
    cols["DAYS_EMPLOYED"] = np.where(
        retired, DAYS_PLACEHOLDER, numeric_from_uniform(stats["DAYS_EMPLOYED"], employed_u)
    )
    birth_u = draws.uniform("DAYS_BIRTH", APPLICATION_LEANS["DAYS_BIRTH"])
    cols["DAYS_BIRTH"] = np.where(
        retired,
        numeric_from_uniform(stats["DAYS_BIRTH"], 0.3 * birth_u),
        cols["DAYS_BIRTH"],
    )
    cols["FLAG_EMP_PHONE"] = np.where(retired, 0.0, 1.0)
    org = cols["ORGANIZATION_TYPE"]
    xna_org = code("ORGANIZATION_TYPE", "XNA")
    others = np.array([i for i in range(len(levels["ORGANIZATION_TYPE"])) if i != xna_org])
    cols["ORGANIZATION_TYPE"] = np.where(
        retired,
        xna_org,
        np.where(org == xna_org, others[rng.integers(0, len(others), len(ids))], org),
    )
    cols["OCCUPATION_TYPE"] = np.where(retired, np.nan, cols["OCCUPATION_TYPE"])

    # Dates stay in the order a life allows them.
    birth = cols["DAYS_BIRTH"]
    working = ~retired
    cols["DAYS_EMPLOYED"][working] = np.maximum(
        cols["DAYS_EMPLOYED"][working], birth[working] + ADULT_DAYS
    )
    cols["DAYS_REGISTRATION"] = np.maximum(cols["DAYS_REGISTRATION"], birth)
    cols["DAYS_ID_PUBLISH"] = np.maximum(cols["DAYS_ID_PUBLISH"], birth + 14 * 365)

    # Amounts that hang together: annuity and goods price follow the credit, in round figures.
    credit = cols["AMT_CREDIT"]
    annuity_ratio = ratio_from_uniform(relations["annuity_to_credit"], rng.random(len(ids)))
    goods_ratio = ratio_from_uniform(relations["goods_to_credit"], rng.random(len(ids)))
    cols["AMT_ANNUITY"] = keep_missing(
        np.round(credit * annuity_ratio * 2) / 2, cols["AMT_ANNUITY"]
    )
    cols["AMT_GOODS_PRICE"] = keep_missing(
        np.maximum(4500.0, np.round(credit * goods_ratio / 4500) * 4500), cols["AMT_GOODS_PRICE"]
    )
    cols["AMT_INCOME_TOTAL"] = np.maximum(2250.0, np.round(cols["AMT_INCOME_TOTAL"] / 2250) * 2250)

    # Households: the family counts the applicant, the children and a partner if any.
    partnered = np.isin(
        cols["NAME_FAMILY_STATUS"],
        [code("NAME_FAMILY_STATUS", s) for s in ("Married", "Civil marriage")],
    )
    cols["CNT_FAM_MEMBERS"] = keep_missing(
        cols["CNT_CHILDREN"] + 1 + partnered, cols["CNT_FAM_MEMBERS"]
    )
    car = cols["FLAG_OWN_CAR"] == code("FLAG_OWN_CAR", "Y")
    car_age = numeric_from_uniform(stats["OWN_CAR_AGE"], draws.uniform("OWN_CAR_AGE"))
    cols["OWN_CAR_AGE"] = np.where(car, np.round(car_age), np.nan)
    return to_frame(table, cols)
