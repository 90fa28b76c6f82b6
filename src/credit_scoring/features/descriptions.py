"""Plain-language names of the model's features, for reasons, cards and charts.

A raw column reads as Home Credit's description says it; an aggregate says what it summarises
and where it comes from ("maximum days past due (instalments)"); anything else is spelled out
from its name.
"""

from __future__ import annotations

import functools
import re

from credit_scoring.contract.tables import CATEGORY, load_contract

SOURCES = (  # aggregate prefixes, most specific first
    ("BURO_ACTIVE_", "active credit-bureau loans"),
    ("BURO_CLOSED_", "closed credit-bureau loans"),
    ("BURO_", "credit-bureau loans"),
    ("PREV_APPROVED_", "approved previous applications"),
    ("PREV_REFUSED_", "refused previous applications"),
    ("PREV_", "previous applications"),
    ("POS_", "POS and cash loan months"),
    ("INSTAL_", "instalment payments"),
    ("CC_", "credit card months"),
)
STATS = {
    "MIN": "lowest",
    "MAX": "highest",
    "MEAN": "average",
    "SUM": "total",
    "VAR": "variability of",
    "NUNIQUE": "number of distinct",
    "SIZE": "number of",
}
WORDS = {  # how the columns read in a sentence; the rest are spelled out from their names
    "EXT_SOURCE_1": "external credit score 1",
    "EXT_SOURCE_2": "external credit score 2",
    "EXT_SOURCE_3": "external credit score 3",
    "EXT_SOURCE_MEAN": "average external credit score",
    "EXT_SOURCE_MIN": "lowest external credit score",
    "EXT_SOURCE_MAX": "highest external credit score",
    "EXT_SOURCE_STD": "spread of the external credit scores",
    "EXT_SOURCE_PROD": "product of the external credit scores",
    "EXT_SOURCE_COUNT": "number of external credit scores known",
    "AMT_INCOME_TOTAL": "income",
    "AMT_CREDIT": "credit amount",
    "AMT_ANNUITY": "loan annuity",
    "AMT_GOODS_PRICE": "price of the goods",
    "CREDIT_INCOME_RATIO": "credit amount relative to income",
    "ANNUITY_INCOME_RATIO": "annuity relative to income",
    "ANNUITY_CREDIT_RATIO": "annuity relative to the credit (repayment speed)",
    "GOODS_CREDIT_RATIO": "goods price relative to the credit",
    "INCOME_PER_PERSON": "income per family member",
    "DAYS_BIRTH": "age (days before the application, negative)",
    "DAYS_EMPLOYED": "employment start (days before the application, negative)",
    "DAYS_EMPLOYED_ANOM": "no employment recorded (pensioner or unemployed)",
    "DAYS_REGISTRATION": "registration change (days before the application)",
    "DAYS_ID_PUBLISH": "identity document change (days before the application)",
    "DAYS_LAST_PHONE_CHANGE": "phone change (days before the application)",
    "OWN_CAR_AGE": "age of own car",
    "CNT_CHILDREN": "number of children",
    "CNT_FAM_MEMBERS": "number of family members",
    "REGION_RATING_CLIENT": "rating of the region",
    "REGION_RATING_CLIENT_W_CITY": "rating of the region and city",
    "REGION_POPULATION_RELATIVE": "population density of the region",
    "DOCUMENT_COUNT": "number of documents provided",
    "CONTACT_FLAG_COUNT": "number of contact channels given",
    "CODE_GENDER": "gender",
    "NAME_CONTRACT_TYPE": "contract type",
    "NAME_INCOME_TYPE": "income type",
    "NAME_EDUCATION_TYPE": "education",
    "NAME_FAMILY_STATUS": "family status",
    "NAME_HOUSING_TYPE": "housing",
    "OCCUPATION_TYPE": "occupation",
    "ORGANIZATION_TYPE": "employer's organisation type",
    "FLAG_OWN_CAR": "owns a car",
    "FLAG_OWN_REALTY": "owns real estate",
    "DAYS_CREDIT": "days since the credit was opened",
    "DAYS_CREDIT_ENDDATE": "days until the credit ends",
    "DAYS_ENDDATE_FACT": "days since the credit was closed",
    "CREDIT_DAY_OVERDUE": "days overdue",
    "AMT_CREDIT_MAX_OVERDUE": "largest amount overdue",
    "AMT_CREDIT_SUM": "credit amount",
    "AMT_CREDIT_SUM_DEBT": "outstanding debt",
    "AMT_CREDIT_SUM_OVERDUE": "amount overdue",
    "DEBT_CREDIT_RATIO": "debt relative to the credit",
    "DPD": "days past due",
    "DBD": "days paid before due",
    "PAYMENT_DIFF": "instalment minus the amount paid",
    "SK_DPD": "days past due",
    "SK_DPD_DEF": "days past due (with tolerance)",
    "UTILISATION": "credit card utilisation",
    "APPLICATION_CREDIT_RATIO": "amount asked relative to the amount granted",
    "COUNT": "number of records",
    "HOUR_APPR_PROCESS_START": "hour the application was started",
    "AMT_REQ_CREDIT_BUREAU_HOUR": "credit bureau enquiries in the last hour",
    "AMT_REQ_CREDIT_BUREAU_DAY": "credit bureau enquiries in the last day",
    "AMT_REQ_CREDIT_BUREAU_WEEK": "credit bureau enquiries in the last week",
    "AMT_REQ_CREDIT_BUREAU_MON": "credit bureau enquiries in the last month",
    "AMT_REQ_CREDIT_BUREAU_QRT": "credit bureau enquiries in the last quarter",
    "AMT_REQ_CREDIT_BUREAU_YEAR": "credit bureau enquiries in the last year",
    "OBS_30_CNT_SOCIAL_CIRCLE": "acquaintances 30 days overdue once",
    "DEF_30_CNT_SOCIAL_CIRCLE": "acquaintances who defaulted 30 days overdue",
    "OBS_60_CNT_SOCIAL_CIRCLE": "acquaintances 60 days overdue once",
    "DEF_60_CNT_SOCIAL_CIRCLE": "acquaintances who defaulted 60 days overdue",
    "REG_REGION_NOT_LIVE_REGION": "registered in another region than lives",
    "REG_REGION_NOT_WORK_REGION": "registered in another region than works",
    "LIVE_REGION_NOT_WORK_REGION": "lives in another region than works",
    "REG_CITY_NOT_LIVE_CITY": "registered in another city than lives",
    "REG_CITY_NOT_WORK_CITY": "registered in another city than works",
    "LIVE_CITY_NOT_WORK_CITY": "lives in another city than works",
    "DAYS_DECISION": "days since the decision",
}
BUILDING = {  # the applicant's building, normalised by Home Credit, as average, mode or median
    "APARTMENTS": "apartment size",
    "BASEMENTAREA": "basement area",
    "YEARS_BEGINEXPLUATATION": "years in use",
    "YEARS_BUILD": "age",
    "COMMONAREA": "common area",
    "ELEVATORS": "elevators",
    "ENTRANCES": "entrances",
    "FLOORSMAX": "highest floor",
    "FLOORSMIN": "lowest floor",
    "LANDAREA": "land area",
    "LIVINGAPARTMENTS": "living apartments",
    "LIVINGAREA": "living area",
    "NONLIVINGAPARTMENTS": "non-living apartments",
    "NONLIVINGAREA": "non-living area",
    "TOTALAREA": "total area",
    "FONDKAPREMONT": "capital repairs fund",
    "HOUSETYPE": "house type",
    "WALLSMATERIAL": "wall material",
    "EMERGENCYSTATE": "emergency state",
}
BUILDING_STATS = {"AVG": "average", "MODE": "mode", "MEDI": "median"}
ABBREVIATIONS = {"AMT": "amount", "CNT": "count", "CNT_": "count", "DAYS": "days", "NAME": ""}


def _spell(column: str) -> str:
    """A column name in words: known phrases first, then its parts lower-cased."""
    if column in WORDS:
        return WORDS[column]
    parts = [ABBREVIATIONS.get(p, p.lower()) for p in column.split("_")]
    return " ".join(p for p in parts if p)


@functools.cache
def _history_categoricals() -> tuple[str, ...]:
    """The categorical columns of the history tables, longest first, from the contract."""
    contract = load_contract()
    names = {
        c.name
        for table in contract.values()
        if not table.name.startswith("application")
        for c in table.columns
        if c.dtype == CATEGORY
    }
    return tuple(sorted(names, key=len, reverse=True))


def _category_level(column: str) -> tuple[str, str] | None:
    """``NAME_CONTRACT_STATUS_REFUSED`` as (column, level), the share aggregates' naming."""
    for name in _history_categoricals():
        if column.startswith(f"{name}_"):
            return name, column[len(name) + 1 :].lower().replace("_", " ")
    return None


@functools.cache
def describe(feature: str) -> str:
    """A plain-language name for a model feature, e.g. for a reason code or a chart label.

    Cached: the feature set is fixed, and an explanation names up to all of them per request.
    """
    if feature in WORDS:
        return WORDS[feature]
    for prefix, source in SOURCES:
        if feature.startswith(prefix):
            body = feature[len(prefix) :]
            if body == "COUNT":
                return f"number of {source}"
            column, _, stat = body.rpartition("_")
            if stat not in STATS:
                return f"{_spell(body)} ({source})"
            inner, _, stat2 = column.rpartition("_")
            rolled = stat2 in STATS and bool(inner)  # a monthly balance rolled up, then again
            level = _category_level(inner if rolled else column)
            if level and rolled:
                what = f"share of months with {_spell(level[0])} {level[1]!r}"
                return f"{STATS[stat]} {what} ({source})"
            if level:
                return f"share with {_spell(level[0])} {level[1]!r} ({source})"
            if rolled:
                return f"{STATS[stat]} {STATS[stat2]} {_spell(inner)} ({source})"
            return f"{STATS[stat]} {_spell(column)} ({source})"
    part, _, stat = feature.rpartition("_")
    if part in BUILDING and stat in BUILDING_STATS:
        return f"building's {BUILDING[part]} ({BUILDING_STATS[stat]}, normalised)"
    if re.fullmatch(r"FLAG_DOCUMENT_\d+", feature):
        return f"provided document {feature.rsplit('_', 1)[1]}"
    return _spell(feature)
