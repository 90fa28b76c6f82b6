"""The application transform: hand-checked values, edge cases, and one truth for batch and row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.tables import load_contract
from credit_scoring.features.feature_schema import ENGINEERED, FeatureSchema, build_schema
from credit_scoring.features.frames import columns_from_frame, feature_frame, history_rows
from credit_scoring.features.transform import columns_from_records, transform

AGGREGATES = ("BURO_DAYS_CREDIT_MEAN", "INSTAL_DPD_MAX")


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return build_schema(load_contract()["application_train"], AGGREGATES)


def one(schema: FeatureSchema, record: dict, history: np.ndarray | None = None) -> pd.Series:
    row = transform(columns_from_records([record], schema), history, schema)[0]
    return pd.Series(row, index=list(schema.features))


def test_schema_orders_inputs_engineered_then_aggregates(schema):
    assert schema.features[: len(schema.numeric)] == schema.numeric
    assert schema.features[-len(AGGREGATES) :] == AGGREGATES
    assert set(ENGINEERED) <= set(schema.features)
    assert "SK_ID_CURR" not in schema.features and "TARGET" not in schema.features
    assert "XNA" not in schema.categorical["CODE_GENDER"]
    assert [schema.features[i] for i in schema.categorical_indices] == list(schema.categorical)
    assert FeatureSchema.from_json(json.dumps(schema.to_dict())) == schema


def test_hand_checked_values(schema):
    row = one(
        schema,
        {
            "AMT_INCOME_TOTAL": 200000.0,
            "AMT_CREDIT": 500000.0,
            "AMT_ANNUITY": 25000.0,
            "AMT_GOODS_PRICE": 450000.0,
            "DAYS_EMPLOYED": -1000,
            "DAYS_BIRTH": -10000,
            "CNT_FAM_MEMBERS": 4.0,
            "EXT_SOURCE_1": 0.2,
            "EXT_SOURCE_3": 0.6,
            "FLAG_DOCUMENT_3": 1,
            "FLAG_DOCUMENT_8": 1,
            "FLAG_MOBIL": 1,
            "FLAG_PHONE": 0,
            "CODE_GENDER": "M",
            "NAME_CONTRACT_TYPE": "Revolving loans",
        },
        np.array([[-700.0, 12.0]]),
    )
    expected = {
        "CREDIT_INCOME_RATIO": 2.5,
        "ANNUITY_INCOME_RATIO": 0.125,
        "ANNUITY_CREDIT_RATIO": 0.05,
        "GOODS_CREDIT_RATIO": 0.9,
        "INCOME_PER_PERSON": 50000.0,
        "EXT_SOURCE_MEAN": 0.4,
        "EXT_SOURCE_MIN": 0.2,
        "EXT_SOURCE_MAX": 0.6,
        "EXT_SOURCE_COUNT": 2.0,
        "DOCUMENT_COUNT": 2.0,
        "CONTACT_FLAG_COUNT": 1.0,
        "DAYS_EMPLOYED_ANOM": 0.0,
        "BURO_DAYS_CREDIT_MEAN": -700.0,
        "INSTAL_DPD_MAX": 12.0,
        "CODE_GENDER": float(schema.categorical["CODE_GENDER"].index("M")),
        "NAME_CONTRACT_TYPE": 1.0,
    }
    for name, value in expected.items():
        assert row[name] == pytest.approx(value), name
    assert row["EXT_SOURCE_STD"] == pytest.approx(np.std([0.2, 0.6], ddof=1))
    assert np.isnan(row["EXT_SOURCE_PROD"])  # EXT_SOURCE_2 is missing


def test_ratio_edge_cases_are_missing_never_infinite(schema):
    row = one(schema, {"AMT_INCOME_TOTAL": 0.0, "AMT_CREDIT": 100.0, "CNT_FAM_MEMBERS": 0.0})
    for name in ("CREDIT_INCOME_RATIO", "ANNUITY_INCOME_RATIO", "ANNUITY_CREDIT_RATIO"):
        assert np.isnan(row[name]), name
    assert np.isnan(row["INCOME_PER_PERSON"])
    assert np.isfinite(row.dropna()).all()


def test_pensioner_placeholder_and_xna_become_missing(schema):
    row = one(
        schema,
        {
            "DAYS_EMPLOYED": 365243,
            "DAYS_BIRTH": -25000,
            "CODE_GENDER": "XNA",
            "ORGANIZATION_TYPE": "XNA",
        },
    )
    assert np.isnan(row["DAYS_EMPLOYED"])
    assert row["DAYS_EMPLOYED_ANOM"] == 1.0
    assert np.isnan(row["CODE_GENDER"]) and np.isnan(row["ORGANIZATION_TYPE"])


def test_unseen_level_is_an_explicit_unknown_not_a_shifted_code(schema):
    row = one(schema, {"NAME_INCOME_TYPE": "Astronaut", "NAME_EDUCATION_TYPE": "Higher education"})
    levels = schema.categorical["NAME_INCOME_TYPE"]
    assert row["NAME_INCOME_TYPE"] == len(levels)
    education = schema.categorical["NAME_EDUCATION_TYPE"]
    assert row["NAME_EDUCATION_TYPE"] == education.index("Higher education")


def test_applicant_without_history_gets_missing_aggregates_not_zeros(schema):
    aggregates = pd.DataFrame(
        {"SK_ID_CURR": [1, 3], "BURO_DAYS_CREDIT_MEAN": [-5.0, 0.0], "INSTAL_DPD_MAX": [0.0, 2.0]}
    )
    rows = history_rows(aggregates, [3, 2, 1], schema)
    np.testing.assert_array_equal(rows, [[0.0, 2.0], [np.nan, np.nan], [-5.0, 0.0]])
    assert np.isnan(one(schema, {"AMT_CREDIT": 1.0})[list(AGGREGATES)]).all()


def test_single_rows_equal_the_batch_exactly(synthetic):
    """One truth: each applicant transformed alone, as the service will, equals the batch."""
    applications = synthetic["application_train"].iloc[:300]
    rng = np.random.default_rng(0)
    aggregates = pd.DataFrame(
        {
            "SK_ID_CURR": applications.SK_ID_CURR.iloc[::2].to_numpy(),
            "BURO_DAYS_CREDIT_MEAN": rng.normal(size=150),
            "INSTAL_DPD_MAX": rng.exponential(size=150),
        }
    )
    schema = build_schema(load_contract()["application_train"], AGGREGATES)
    batch = feature_frame(applications, aggregates, schema)
    assert list(batch.columns[:2]) == ["SK_ID_CURR", "TARGET"]
    features = batch[list(schema.features)].to_numpy()

    raw = applications.drop(columns=["TARGET"])
    for i, record in enumerate(raw.to_dict(orient="records")):
        record = {k: None if pd.isna(v) else v for k, v in record.items()}
        history = history_rows(aggregates, [record["SK_ID_CURR"]], schema)
        row = transform(columns_from_records([record], schema), history, schema)[0]
        np.testing.assert_array_equal(row, features[i], err_msg=f"applicant {record['SK_ID_CURR']}")


def test_batch_columns_match_records(schema, synthetic):
    frame = synthetic["application_test"].iloc[:50]
    from_frame = columns_from_frame(frame, schema)
    records = [
        {k: None if pd.isna(v) else v for k, v in r.items()} for r in frame.to_dict("records")
    ]
    from_records = columns_from_records(records, schema)
    for name in schema.inputs:
        np.testing.assert_array_equal(from_frame[name], from_records[name], err_msg=name)
