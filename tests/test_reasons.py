"""Reasons that mean what they say: families, units people use, and never a denied feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring.serving.package import Package
from credit_scoring.serving.reasons import (
    MAX_REASONS,
    Family,
    ReasonCodes,
    reason_text,
    reasons,
)
from credit_scoring.serving.scorer import Scorer

CODES = ReasonCodes.default()
AGE = next(f for f in CODES.families if f.code == "AGE")


def test_age_reads_in_years_and_the_direction_follows_it():
    young = reason_text(AGE, "DAYS_BIRTH", -9461.0, -15750.0)
    assert young == "Age: 26 years (typical 43 years); younger applicants default more often here"
    old = reason_text(AGE, "DAYS_BIRTH", -25000.0, -15750.0)
    assert old == "Age: 68 years (typical 43 years); older applicants default more often here"
    for text in (young, old):
        assert "high" not in text and "-" not in text


def test_other_day_counts_read_as_time_before_the_application():
    employment = next(f for f in CODES.families if f.code == "EMPLOYMENT")
    text = reason_text(employment, "DAYS_EMPLOYED", -400.0, -1800.0)
    assert text.startswith("Employment: 1.1 years in the current job (typical 5 years)")
    assert text.endswith("shorter employment goes with more defaults here")
    history = next(f for f in CODES.families if f.code == "BUREAU_HISTORY")
    text = reason_text(history, "BURO_DAYS_CREDIT_MEAN", -300.0, -1200.0)
    assert text == (
        "Credit history at other lenders: average days since the credit was opened "
        "(credit-bureau loans) 300 days before (typical 1,200 days before); "
        "lower values go with more defaults here"
    )


def test_labels_and_missing_values_are_named():
    family = Family(code="X", title="Education", patterns=(".*",))
    text = reason_text(family, "NAME_EDUCATION_TYPE", "Lower secondary", None)
    assert text == "Education: education is Lower secondary"
    assert reason_text(family, "EXT_SOURCE_1", None, 0.5) == (
        "Education: external credit score 1 not known"
    )


def test_the_families_are_versioned_and_cover_every_feature(packaged):
    assert CODES.version >= 1
    schema = Package.load(packaged["work"] / "models" / "package").schema
    schema_features = schema.features
    index = CODES.family_index(schema_features)
    assert index.shape == (len(schema_features),)
    denied = {name for name, i in zip(schema_features, index, strict=True) if i < 0}
    assert {"HOUR_APPR_PROCESS_START", "WEEKDAY_APPR_PROCESS_START"} <= denied
    # The prohibited bases are no features at all, and denied should a configuration add them.
    assert schema.audited == ("CODE_GENDER", "NAME_FAMILY_STATUS")
    assert not set(schema.audited) & set(schema_features)
    assert all(CODES.family_index(schema.audited) < 0)
    ext = {
        schema_features[i]
        for i in np.flatnonzero(index == index[schema_features.index("EXT_SOURCE_2")])
    }
    assert {"EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "EXT_SOURCE_MEAN"} <= ext


def test_hand_built_contributions_give_distinct_positive_families():
    features = (
        "EXT_SOURCE_1",
        "EXT_SOURCE_2",
        "CODE_GENDER",
        "DAYS_BIRTH",
        "AMT_CREDIT",
        "FLAG_PHONE",
    )
    row = np.array([0.2, 0.3, 0.0, -9000.0, 500000.0, 1.0])
    # the two external scores add up to the strongest reason; gender is denied, however large
    contribution = np.array([0.3, 0.25, 2.0, 0.4, -0.2, 0.01, -2.5])
    given = reasons(
        row,
        contribution,
        features=features,
        categorical={"CODE_GENDER": ("F", "M")},
        typical={"EXT_SOURCE_1": 0.5, "EXT_SOURCE_2": 0.55, "DAYS_BIRTH": -15000.0},
        codes=CODES,
    )
    assert [r["code"] for r in given] == ["EXTERNAL_SCORES", "AGE", "DOCUMENTS_AND_CONTACT"]
    assert given[0]["contribution"] == pytest.approx(0.55)
    assert given[0]["feature"] == "EXT_SOURCE_1"
    assert all(r["contribution"] > 0 for r in given)


@pytest.fixture(scope="module")
def refused(packaged) -> tuple[Scorer, list[dict]]:
    """Up to 500 refused applicants of the packaged run, as the service decides them."""
    folder = packaged["work"] / "models" / "package"
    scorer = Scorer(Package.load(folder))
    work, params = packaged["work"], packaged["params"]
    frame = pd.concat(
        pd.read_parquet(work / params["data"]["raw_dir"] / f"application_{split}.parquet")
        for split in ("train", "test")
    )
    records = frame.drop(columns="TARGET").to_dict(orient="records")
    applicants = [
        (
            {k: (None if pd.isna(v) else v) for k, v in r.items() if k != "SK_ID_CURR"},
            int(r["SK_ID_CURR"]),
        )
        for r in records
    ]
    rows = scorer.rows(applicants)
    decisions = scorer.decisions(rows, [c for _, c in applicants])
    return scorer, [d for d in decisions if d["decision"] == "refuse"][:500]


def test_every_refusal_has_distinct_positive_reason_families(refused):
    _, decisions = refused
    assert len(decisions) >= 300
    for d in decisions:
        codes = [r["code"] for r in d["reasons"]]
        assert 1 <= len(codes) <= MAX_REASONS
        assert len(set(codes)) == len(codes)
        assert all(r["contribution"] > 0 for r in d["reasons"])
        assert [r["contribution"] for r in d["reasons"]] == sorted(
            (r["contribution"] for r in d["reasons"]), reverse=True
        )


def test_no_denied_feature_is_ever_a_reason(refused):
    _, decisions = refused
    stated = {r["feature"] for d in decisions for r in d["reasons"]}
    assert not {name for name in stated if CODES.denied(name)}
    text = " ".join(r["text"] for d in decisions for r in d["reasons"])
    assert "hour" not in text.lower() and "gender" not in text.lower()


def test_the_package_carries_the_map_it_was_explained_with(packaged):
    folder = Path(packaged["work"]) / "models" / "package"
    assert Package.load(folder).reasons == CODES
