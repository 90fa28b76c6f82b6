"""The data contract itself, and conform_table on frames built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.conform import conform_table
from credit_scoring.contract.profiling import describe_column
from credit_scoring.contract.tables import (
    TABLES,
    Limits,
    SchemaError,
    load_contract,
)


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
        (
            lambda f: f.assign(MONTHS_BALANCE=[0, -1, 2]),
            "bureau_balance.MONTHS_BALANCE: values must be at most 0, 1 bad value(s), "
            "first 2 at row 2",
        ),
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


def test_hard_limits_of_the_applications():
    """What the columns' descriptions allow, in the contract: the one place stages and service
    read them from."""
    for name in ("application_train", "application_test"):
        table = load_contract()[name]
        limits = {col.name: col.limits for col in table.columns}
        for score in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "APARTMENTS_AVG"):
            assert limits[score] == Limits(minimum=0, maximum=1)
        for amount in (
            "AMT_INCOME_TOTAL",
            "AMT_CREDIT",
            "CNT_CHILDREN",
            "OBS_30_CNT_SOCIAL_CIRCLE",
        ):
            assert limits[amount] == Limits(minimum=0)
        assert limits["DAYS_BIRTH"] == Limits(minimum=-100 * 365.25, maximum=-18 * 365.25)
        assert limits["DAYS_EMPLOYED"] == Limits(maximum=0, allowed_extra=(365243,))
        assert limits["DAYS_ID_PUBLISH"] == Limits(maximum=0)
        assert limits["REGION_RATING_CLIENT"] == Limits(values=(1, 2, 3))
        assert limits["FLAG_DOCUMENT_3"] == Limits(values=(0, 1))
        assert not limits["SK_ID_CURR"] and not limits["NAME_INCOME_TYPE"]
    # The history tables keep only the safe ones: their amounts go negative in the full files.
    assert not load_contract()["bureau"].column("AMT_CREDIT_SUM_DEBT").limits
    assert load_contract()["bureau"].column("DAYS_CREDIT").limits == Limits(maximum=0)


def test_limits_check_values_and_say_so():
    ext = Limits(minimum=0, maximum=1)
    np.testing.assert_array_equal(
        ext.outside(np.array([0.0, 1.0, 1.5, -0.1, np.nan])), [False, False, True, True, False]
    )
    assert ext.describe() == "in [0, 1]"
    assert ext.breach(7.0, "EXT_SOURCE_2") == "7.0 is above the maximum 1 of EXT_SOURCE_2"
    assert ext.breach(0.5, "EXT_SOURCE_2") is None
    employed = Limits(maximum=0, allowed_extra=(365243,))
    np.testing.assert_array_equal(employed.outside(np.array([-5, 0, 3, 365243])), [0, 0, 1, 0])
    assert employed.describe() == "at most 0 (or 365243)"
    assert employed.breach(365243, "DAYS_EMPLOYED") is None
    assert employed.breach(3, "DAYS_EMPLOYED") == (
        "3 is above the maximum 0 of DAYS_EMPLOYED (365243 is allowed too)"
    )
    age = Limits(minimum=-36525, maximum=-6574.5)
    assert age.breach(500, "DAYS_BIRTH") == "500 is above the maximum -6574.5 of DAYS_BIRTH"
    assert age.breach(-40000, "DAYS_BIRTH") == "-40000 is below the minimum -36525 of DAYS_BIRTH"
    flag = Limits(values=(0, 1))
    assert flag.breach(2, "FLAG_MOBIL") == "2 is not one of [0, 1], the values of FLAG_MOBIL"
    assert Limits(minimum=0).describe() == "at least 0"
    assert Limits.from_dict(employed.to_dict()) == employed
    assert not Limits() and Limits(minimum=0)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("EXT_SOURCE_2", 7.0, "EXT_SOURCE_2: values must be in [0, 1], 1 bad value(s), first 7.0"),
        ("AMT_INCOME_TOTAL", -5.0, "AMT_INCOME_TOTAL: values must be at least 0"),
        ("CNT_CHILDREN", -3, "CNT_CHILDREN: values must be at least 0"),
        ("DAYS_BIRTH", 500, "DAYS_BIRTH: values must be in [-36525, -6574.5]"),
        ("DAYS_EMPLOYED", 12, "DAYS_EMPLOYED: values must be at most 0 (or 365243)"),
        ("REGION_RATING_CLIENT", 4, "REGION_RATING_CLIENT: values must be in [1, 2, 3]"),
        ("FLAG_MOBIL", 2, "FLAG_MOBIL: values must be in [0, 1]"),
    ],
)
def test_a_value_over_a_hard_limit_stops_the_table(synthetic, column, value, message):
    frame = synthetic["application_test"]
    broken = frame.assign(
        **{column: frame[column].astype("float64").where(frame.index != 3, value)}
    )
    with pytest.raises(SchemaError) as err:
        conform_table("application_test", broken)
    assert str(err.value).startswith(f"application_test.{message}")
    assert str(err.value).endswith(" at row 3")
    placeholder = frame.assign(DAYS_EMPLOYED=frame.DAYS_EMPLOYED.where(frame.index != 3, 365243))
    conform_table("application_test", placeholder)  # the pensioners' placeholder is allowed


def test_profiling_derives_limits_that_no_genuine_value_breaks():
    entry, _ = describe_column("application_train", "EXT_SOURCE_2", pd.Series([0.1, 0.7, None]))
    assert (entry["min"], entry["max"]) == (0, 1)
    entry, _ = describe_column("bureau", "AMT_CREDIT_SUM_DEBT", pd.Series([-5.0, 10.0]))
    assert "min" not in entry and "max" not in entry
    with pytest.raises(ValueError, match=r"application_train\.EXT_SOURCE_2: the limit in \[0, 1\]"):
        describe_column("application_train", "EXT_SOURCE_2", pd.Series([0.1, 1.2]))
