"""The synthetic generator: the real schema, consistent keys, genuine-looking data, real signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL, write_kaggle_csvs
from credit_scoring.atomic import write_tables
from credit_scoring.contract.conform import check_foreign_keys
from credit_scoring.contract.tables import CATEGORY, TABLES, load_contract
from credit_scoring.sources.local import read_local
from credit_scoring.sources.synthetic import generate
from credit_scoring.sources.synthetic.sampling import load_profile


def test_every_table_meets_the_contract_in_column_order(synthetic):
    contract = load_contract()
    assert list(synthetic) == list(TABLES)
    for name, frame in synthetic.items():
        assert list(frame.columns) == contract[name].names
        for col in contract[name].columns:
            if col.dtype == CATEGORY:
                assert list(frame[col.name].cat.categories) == list(col.levels)
            else:
                assert str(frame[col.name].dtype) == col.dtype, (name, col.name)
    assert synthetic["application_train"].shape == (SMALL["n_train"], 122)
    assert synthetic["application_test"].shape == (SMALL["n_test"], 121)


def test_every_value_is_inside_the_contracts_hard_limits(synthetic):
    """generate() conforms each table, limits included; checked here column by column."""
    contract = load_contract()
    limited = 0
    for name, frame in synthetic.items():
        for col in contract[name].columns:
            if col.limits:
                limited += 1
                outside = col.limits.outside(frame[col.name].to_numpy(dtype="float64"))
                assert not outside.any(), (name, col.name, frame[col.name][outside].head(3))
    assert limited > 200
    app = synthetic["application_train"]
    ages = -app.DAYS_BIRTH / 365.25
    assert 18 <= ages.min() and ages.max() <= 100


def test_keys_are_unique_and_every_reference_has_a_parent(synthetic):
    assert set(check_foreign_keys(synthetic).values()) == {0}
    applicants = pd.concat(
        [synthetic["application_train"].SK_ID_CURR, synthetic["application_test"].SK_ID_CURR]
    )
    assert applicants.is_unique
    for name, key in [
        ("bureau", ["SK_ID_BUREAU"]),
        ("previous_application", ["SK_ID_PREV"]),
        ("bureau_balance", ["SK_ID_BUREAU", "MONTHS_BALANCE"]),
        ("POS_CASH_balance", ["SK_ID_PREV", "MONTHS_BALANCE"]),
        ("credit_card_balance", ["SK_ID_PREV", "MONTHS_BALANCE"]),
    ]:
        assert not synthetic[name].duplicated(key).any(), name
    # The monthly tables' SK_ID_CURR is the one of their previous application.
    prev = synthetic["previous_application"].set_index("SK_ID_PREV").SK_ID_CURR
    for name in ("POS_CASH_balance", "credit_card_balance", "installments_payments"):
        frame = synthetic[name]
        assert (frame.SK_ID_PREV.map(prev) == frame.SK_ID_CURR).all(), name


def test_known_quirks_and_plausible_relations(synthetic):
    app = pd.concat([synthetic["application_train"], synthetic["application_test"]])
    retired = app.NAME_INCOME_TYPE.isin(["Pensioner", "Unemployed"])
    assert (app.DAYS_EMPLOYED[retired] == 365243).all()
    assert (app.DAYS_EMPLOYED[~retired] < 0).all()
    assert (app.ORGANIZATION_TYPE[retired] == "XNA").all()
    assert (app.FLAG_EMP_PHONE[retired] == 0).all()
    assert 0.12 < retired.mean() < 0.25
    assert (app.AMT_ANNUITY.dropna() < app.AMT_CREDIT[app.AMT_ANNUITY.notna()]).all()
    for col in ("DAYS_BIRTH", "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "DAYS_LAST_PHONE_CHANGE"):
        assert (app[col].dropna() <= 0).all(), col
    assert (app.DAYS_EMPLOYED[~retired] >= app.DAYS_BIRTH[~retired] + 18 * 365).all()
    assert (app.DAYS_BIRTH / -365).between(20, 70).mean() > 0.99
    for col in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"):
        assert app[col].dropna().between(0, 1).all(), col
    assert (app.CNT_FAM_MEMBERS.dropna() >= app.CNT_CHILDREN[app.CNT_FAM_MEMBERS.notna()] + 1).all()
    assert app.OWN_CAR_AGE[app.FLAG_OWN_CAR == "N"].isna().all()

    prev = synthetic["previous_application"]
    assert {"XNA", "XAP"} <= set(prev.NAME_CASH_LOAN_PURPOSE.unique())
    assert (prev.CODE_REJECT_REASON[prev.NAME_CONTRACT_STATUS != "Refused"] == "XAP").all()
    assert (prev.CODE_REJECT_REASON[prev.NAME_CONTRACT_STATUS == "Refused"] != "XAP").all()
    approved = prev.NAME_CONTRACT_STATUS == "Approved"
    assert prev.DAYS_FIRST_DUE[~approved].isna().all()
    assert (prev.DAYS_FIRST_DRAWING[approved] == 365243).mean() > 0.5

    bureau = synthetic["bureau"]
    assert (bureau.DAYS_CREDIT <= 0).all()
    closed = bureau.CREDIT_ACTIVE == "Closed"
    assert bureau.DAYS_ENDDATE_FACT[~closed].isna().all()
    assert (bureau.DAYS_ENDDATE_FACT[closed] >= bureau.DAYS_CREDIT[closed]).all()
    balance = synthetic["bureau_balance"]
    assert balance.MONTHS_BALANCE.between(-96, 0).all()
    assert (balance.groupby("SK_ID_BUREAU").MONTHS_BALANCE.max() == 0).all()
    for name in ("POS_CASH_balance", "credit_card_balance"):
        assert (synthetic[name].MONTHS_BALANCE <= -1).all(), name
    inst = synthetic["installments_payments"]
    assert (inst.DAYS_ENTRY_PAYMENT <= -1).all() and (inst.AMT_PAYMENT >= 0).all()


def test_marginals_follow_the_genuine_profile():
    tables = generate(n_train=20000, n_test=100, seed=3)
    app = tables["application_train"]
    stats = load_profile()["tables"]["application_train"]["columns"]
    for name in ("EXT_SOURCE_1", "EXT_SOURCE_3", "APARTMENTS_AVG", "AMT_REQ_CREDIT_BUREAU_YEAR"):
        assert abs(app[name].isna().mean() - stats[name]["missing"]) < 0.02, name
    # The building block goes missing together, as in the genuine files.
    assert (app.APARTMENTS_AVG.isna() == app.APARTMENTS_MODE.isna()).mean() > 0.97
    for name in ("NAME_CONTRACT_TYPE", "NAME_EDUCATION_TYPE", "NAME_FAMILY_STATUS"):
        share = app[name].value_counts(normalize=True)
        for level, freq in stats[name]["levels"].items():
            assert abs(share.get(level, 0.0) - freq) < 0.03, (name, level)
    q = stats["AMT_CREDIT"]["quantiles"]
    assert abs(app.AMT_CREDIT.median() - q[len(q) // 2]) / q[len(q) // 2] < 0.05


def test_history_counts_spread_like_the_genuine_data(synthetic):
    ids = pd.concat(
        [synthetic["application_train"].SK_ID_CURR, synthetic["application_test"].SK_ID_CURR]
    )
    per_applicant = synthetic["bureau"].SK_ID_CURR.value_counts().reindex(ids, fill_value=0)
    assert 0.08 < (per_applicant == 0).mean() < 0.2  # many with none (genuine: 14%)
    assert per_applicant.max() >= 20  # a long tail
    prev = synthetic["previous_application"].SK_ID_CURR.value_counts().reindex(ids, fill_value=0)
    assert 3.5 < prev.mean() < 6.5 and prev.max() >= 20


def test_default_rate_and_where_the_risk_shows(synthetic):
    tables = generate(n_train=20000, n_test=100, seed=5)
    app = tables["application_train"].set_index("SK_ID_CURR")
    assert 0.07 < app.TARGET.mean() < 0.09

    def rate_by(flag: pd.Series) -> tuple[float, float]:
        flag = flag.reindex(app.index, fill_value=False)
        return app.TARGET[flag].mean(), app.TARGET[~flag].mean()

    low_ext = app.EXT_SOURCE_3 < app.EXT_SOURCE_3.quantile(0.2)
    inst = tables["installments_payments"]
    late = (inst.DAYS_ENTRY_PAYMENT > inst.DAYS_INSTALMENT).groupby(inst.SK_ID_CURR).mean() > 0.1
    prev = tables["previous_application"]
    refused = (prev.NAME_CONTRACT_STATUS == "Refused").groupby(prev.SK_ID_CURR).mean() > 0.3
    bb = tables["bureau_balance"].merge(tables["bureau"][["SK_ID_BUREAU", "SK_ID_CURR"]])
    overdue = bb.STATUS.isin(list("12345")).groupby(bb.SK_ID_CURR).any()
    cards = tables["credit_card_balance"]
    utilised = (cards.AMT_BALANCE / cards.AMT_CREDIT_LIMIT_ACTUAL.replace(0, np.nan)).groupby(
        cards.SK_ID_CURR
    ).mean() > 0.8
    for signal in (low_ext, late, refused, overdue, utilised):
        risky, rest = rate_by(signal)
        assert risky > 1.4 * rest


def test_same_seed_gives_byte_identical_parquet(tmp_path):
    small = {"n_train": 400, "n_test": 100, "seed": 11}
    write_tables(generate(**small), tmp_path / "a")
    write_tables(generate(**small), tmp_path / "b")
    write_tables(generate(**{**small, "seed": 12}), tmp_path / "c")
    for name in TABLES:
        a = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{name}.parquet").read_bytes(), name
        assert a != (tmp_path / "c" / f"{name}.parquet").read_bytes(), name


def test_drift_knob_shifts_only_the_named_test_columns():
    plain = generate(n_train=500, n_test=2000, seed=9)
    named = ["EXT_SOURCE_2", "DAYS_BIRTH", "NAME_INCOME_TYPE"]
    drifted = generate(n_train=500, n_test=2000, seed=9, drift_columns=named, drift_shift=0.8)
    for name in TABLES:
        if name != "application_test":
            pd.testing.assert_frame_equal(plain[name], drifted[name])
    before, after = plain["application_test"], drifted["application_test"]
    untouched = [c for c in before.columns if c not in named]
    pd.testing.assert_frame_equal(before[untouched], after[untouched])
    assert after.EXT_SOURCE_2.mean() > before.EXT_SOURCE_2.mean() + 0.1
    assert after.EXT_SOURCE_2.max() <= 1.0
    assert after.DAYS_BIRTH.mean() > before.DAYS_BIRTH.mean() + 2000
    assert (after.NAME_INCOME_TYPE != before.NAME_INCOME_TYPE).mean() > 0.2


def test_drift_knob_rejects_unknown_columns():
    with pytest.raises(ValueError, match="AMT_TYPO"):
        generate(n_train=50, n_test=50, seed=1, drift_columns=["AMT_TYPO"], drift_shift=1.0)


def test_kaggle_csv_round_trip_through_the_local_source(synthetic, tmp_path):
    """Written as Kaggle's CSVs and read back by the local source, nothing changes."""
    back = read_local(write_kaggle_csvs(synthetic, tmp_path / "kaggle"))
    for name in TABLES:
        pd.testing.assert_frame_equal(back[name], synthetic[name], check_exact=False, rtol=1e-12)
