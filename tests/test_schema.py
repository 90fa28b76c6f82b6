"""The data contract itself, and conform_table on frames built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.tables import TABLES, SchemaError, conform_table, load_contract


def test_contract_covers_the_kaggle_tables_with_their_shapes():
    contract = load_contract()
    assert list(contract) == list(TABLES)
    widths = {name: len(table.columns) for name, table in contract.items()}
    assert widths == {
        "application_train": 122,
        "application_test": 121,
        "bureau": 17,
        "bureau_balance": 3,
        "previous_application": 37,
        "POS_CASH_balance": 8,
        "credit_card_balance": 23,
        "installments_payments": 8,
    }
    train = contract["application_train"]
    assert train.primary_key == ("SK_ID_CURR",)
    assert train.column("TARGET").values == (0, 1)
    # Levels the full files hold but the sample is too small to show.
    assert "XNA" in train.column("CODE_GENDER").levels
    assert "Maternity leave" in train.column("NAME_INCOME_TYPE").levels
    assert "Bad debt" in contract["bureau"].column("CREDIT_ACTIVE").levels
    assert contract["application_test"].names == [n for n in train.names if n != "TARGET"]


@pytest.fixture
def balance() -> pd.DataFrame:
    return pd.DataFrame(
        {"SK_ID_BUREAU": [5, 5, 6], "MONTHS_BALANCE": [0, -1, 0], "STATUS": ["C", "0", "X"]}
    )


def test_conform_casts_to_contract_dtypes(balance):
    out = conform_table("bureau_balance", balance)
    assert out.STATUS.dtype == "category"
    assert list(out.STATUS.cat.categories) == list(
        load_contract()["bureau_balance"].column("STATUS").levels
    )
    assert out.MONTHS_BALANCE.dtype == "int64"
    pd.testing.assert_frame_equal(conform_table("bureau_balance", out), out)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(STATUS=["C", "0", "Z"]),
            "bureau_balance.STATUS: unknown level(s) ['Z']",
        ),
        (lambda f: f.assign(MONTHS_BALANCE=[0, -1.5, 0]), "MONTHS_BALANCE: expected int64"),
        (lambda f: f.assign(MONTHS_BALANCE=[0, np.nan, 0]), "MONTHS_BALANCE: 1 missing value"),
        (lambda f: f.assign(MONTHS_BALANCE=[0, 0, 0]), "SK_ID_BUREAU,MONTHS_BALANCE: 1 duplicate"),
        (lambda f: f.assign(STATUS=[None, "0", "X"]), "STATUS: 1 missing value(s), not allowed"),
        (lambda f: f[["STATUS", "SK_ID_BUREAU"]], "MONTHS_BALANCE: missing column"),
        (lambda f: f.iloc[:0], "bureau_balance: the table is empty"),
    ],
)
def test_conform_names_table_and_column(balance, change, message):
    with pytest.raises(SchemaError) as err:
        conform_table("bureau_balance", change(balance))
    assert message in str(err.value)


def test_infinite_amounts_are_rejected():
    with pytest.raises(SchemaError, match=r"installments_payments\.AMT_INSTALMENT: infinite"):
        conform_table(
            "installments_payments",
            pd.DataFrame(
                {
                    "SK_ID_PREV": [1],
                    "SK_ID_CURR": [2],
                    "NUM_INSTALMENT_VERSION": [1.0],
                    "NUM_INSTALMENT_NUMBER": [1],
                    "DAYS_INSTALMENT": [-10.0],
                    "DAYS_ENTRY_PAYMENT": [-9.0],
                    "AMT_INSTALMENT": [np.inf],
                    "AMT_PAYMENT": [1.0],
                }
            ),
        )
