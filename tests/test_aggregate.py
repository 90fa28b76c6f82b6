"""The aggregate stage: values worked out by hand, polars against pandas, the stage itself."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yaml

from conftest import ROOT
from credit_scoring.atomic import write_tables
from credit_scoring.contract.tables import CATEGORY, KEY, Column, load_contract
from credit_scoring.features.aggregates import (
    SpecError,
    aggregate,
    load_specs,
    plan_groups,
    required_tables,
    share_labels,
)
from credit_scoring.floats import canonical
from credit_scoring.sources.synthetic import generate
from tests.support.reference_aggregates import aggregate_reference
from tests.support.stages import SPEC, run_stage

NAN = np.nan
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
SPECS = load_specs(SPEC)
DEFAULT = plan_groups(SPECS, enabled=PARAMS["aggregate"]["groups"])
HISTORY = required_tables(DEFAULT)
PREFIXES = {spec["prefix"] for spec in SPECS.values()}


def run_polars(tables: dict[str, pd.DataFrame], groups) -> pd.DataFrame:
    return aggregate({n: pl.from_pandas(t) for n, t in tables.items()}, groups).to_pandas()


ENGINES: dict[str, Callable] = {"polars": run_polars, "pandas": aggregate_reference}


@pytest.fixture(params=list(ENGINES))
def engine(request) -> Callable[[dict[str, pd.DataFrame], dict], pd.DataFrame]:
    """Run one hand-written group spec with one engine; the result is indexed by applicant."""

    def run(tables: dict[str, pd.DataFrame], spec: dict) -> pd.DataFrame:
        out = ENGINES[request.param](tables, plan_groups({"group": spec}, enabled=["group"]))
        return out.set_index(KEY)

    return run


def frame(table: str, **columns: list) -> pd.DataFrame:
    """A few hand-written rows of ``table`` in contract dtypes (categoricals with all levels)."""
    contract = load_contract()[table]
    out = {}
    for name, values in columns.items():
        col = contract.column(name)
        if col.dtype == CATEGORY:
            out[name] = pd.Categorical(values, categories=col.levels)
        else:
            out[name] = pd.Series(values, dtype=col.dtype)
    return pd.DataFrame(out)


def check(out: pd.DataFrame, applicants: list[int], expected: dict[str, list[float]]) -> None:
    assert out.index.tolist() == applicants
    for name, values in expected.items():
        np.testing.assert_allclose(out[name].to_numpy(), values, rtol=1e-7, err_msg=name)
    assert not np.isinf(out.to_numpy()).any()


# --- values worked out by hand, for both engines ------------------------------------------


def test_bureau_with_balance_rollup_and_active_closed_split(engine):
    tables = {
        "bureau": frame(
            "bureau",
            SK_ID_CURR=[1, 1, 1, 2],
            SK_ID_BUREAU=[10, 11, 12, 20],
            CREDIT_ACTIVE=["Active", "Closed", "Active", "Closed"],
            AMT_CREDIT_SUM=[100.0, 200.0, 0.0, NAN],
            AMT_CREDIT_SUM_DEBT=[50.0, 0.0, 10.0, 5.0],
        ),
        "bureau_balance": frame(  # credit 12 has no monthly balance
            "bureau_balance",
            SK_ID_BUREAU=[10, 10, 10, 11, 11, 20],
            MONTHS_BALANCE=[-2, -1, 0, -1, 0, 0],
            STATUS=["1", "0", "C", "C", "C", "X"],
        ),
    }
    spec = {
        "table": "bureau",
        "prefix": "BURO",
        "rollup": {
            "table": "bureau_balance",
            "key": "SK_ID_BUREAU",
            "numeric": {"MONTHS_BALANCE": ["min", "size"]},
            "categorical": ["STATUS"],
        },
        "subsets": {
            "ACTIVE": {"column": "CREDIT_ACTIVE", "level": "Active"},
            "CLOSED": {"column": "CREDIT_ACTIVE", "level": "Closed"},
        },
        "count": True,
        "numeric": {
            "AMT_CREDIT_SUM": ["sum", "mean"],
            "DEBT_CREDIT_RATIO": ["max"],  # 50/100, 0/200, 10/0 -> missing, 5/missing
            "MONTHS_BALANCE_MIN": ["min"],
            "MONTHS_BALANCE_SIZE": ["mean"],
        },
        "categorical": ["CREDIT_ACTIVE", "STATUS"],
    }
    check(
        engine(tables, spec),
        [1, 2],
        {
            "BURO_AMT_CREDIT_SUM_SUM": [300, NAN],  # a sum of nothing known is missing
            "BURO_AMT_CREDIT_SUM_MEAN": [100, NAN],
            "BURO_DEBT_CREDIT_RATIO_MAX": [0.5, NAN],
            "BURO_MONTHS_BALANCE_MIN_MIN": [-2, 0],
            "BURO_MONTHS_BALANCE_SIZE_MEAN": [2.5, 1],  # credit 12 has no months: skipped
            "BURO_CREDIT_ACTIVE_ACTIVE_MEAN": [2 / 3, 0],
            "BURO_CREDIT_ACTIVE_CLOSED_MEAN": [1 / 3, 1],
            "BURO_CREDIT_ACTIVE_BAD_DEBT_MEAN": [0, 0],
            "BURO_STATUS_C_MEAN": [(1 / 3 + 1) / 2, 0],  # the mean of per-credit shares
            "BURO_STATUS_0_MEAN": [1 / 6, 0],
            "BURO_STATUS_X_MEAN": [0, 1],
            "BURO_COUNT": [3, 1],
            "BURO_ACTIVE_AMT_CREDIT_SUM_SUM": [100, NAN],  # applicant 2 has no active credit
            "BURO_ACTIVE_AMT_CREDIT_SUM_MEAN": [50, NAN],
            "BURO_ACTIVE_DEBT_CREDIT_RATIO_MAX": [0.5, NAN],
            "BURO_ACTIVE_MONTHS_BALANCE_MIN_MIN": [-2, NAN],
            "BURO_ACTIVE_MONTHS_BALANCE_SIZE_MEAN": [3, NAN],
            "BURO_CLOSED_AMT_CREDIT_SUM_SUM": [200, NAN],
            "BURO_CLOSED_DEBT_CREDIT_RATIO_MAX": [0, NAN],
            "BURO_CLOSED_MONTHS_BALANCE_MIN_MIN": [-1, 0],
        },
    )


def test_previous_placeholders_ratio_and_approved_refused_split(engine):
    tables = {
        "previous_application": frame(
            "previous_application",
            SK_ID_PREV=[1, 2, 3, 4, 5],
            SK_ID_CURR=[1, 1, 1, 1, 2],
            NAME_CONTRACT_STATUS=["Approved", "Refused", "Approved", "Canceled", "Refused"],
            DAYS_FIRST_DUE=[-100.0, 365243.0, -300.0, 365243.0, 365243.0],
            AMT_APPLICATION=[100.0, 50.0, 300.0, NAN, 80.0],
            AMT_CREDIT=[200.0, 0.0, 200.0, 100.0, 40.0],
            NAME_TYPE_SUITE=["Family", None, "Family", "Spouse, partner", None],
        )
    }
    spec = {
        "table": "previous_application",
        "prefix": "PREV",
        "missing": {"DAYS_FIRST_DUE": 365243},
        "subsets": {
            "APPROVED": {"column": "NAME_CONTRACT_STATUS", "level": "Approved"},
            "REFUSED": {"column": "NAME_CONTRACT_STATUS", "level": "Refused"},
        },
        "numeric": {
            "DAYS_FIRST_DUE": ["min", "max", "mean"],
            "APPLICATION_CREDIT_RATIO": ["min", "max", "mean", "var"],  # 0.5, 50/0, 1.5, NaN
        },
        "categorical": ["NAME_CONTRACT_STATUS", "NAME_TYPE_SUITE"],
    }
    check(
        engine(tables, spec),
        [1, 2],
        {
            "PREV_DAYS_FIRST_DUE_MIN": [-300, NAN],  # 365243 is "no date", not a day count
            "PREV_DAYS_FIRST_DUE_MAX": [-100, NAN],
            "PREV_DAYS_FIRST_DUE_MEAN": [-200, NAN],
            "PREV_APPLICATION_CREDIT_RATIO_MIN": [0.5, 2],
            "PREV_APPLICATION_CREDIT_RATIO_MAX": [1.5, 2],
            "PREV_APPLICATION_CREDIT_RATIO_MEAN": [1, 2],
            "PREV_APPLICATION_CREDIT_RATIO_VAR": [0.5, NAN],  # ddof=1: one value has none
            "PREV_NAME_CONTRACT_STATUS_APPROVED_MEAN": [0.5, 0],
            "PREV_NAME_CONTRACT_STATUS_REFUSED_MEAN": [0.25, 1],
            "PREV_NAME_CONTRACT_STATUS_CANCELED_MEAN": [0.25, 0],
            "PREV_NAME_CONTRACT_STATUS_UNUSED_OFFER_MEAN": [0, 0],
            "PREV_NAME_TYPE_SUITE_FAMILY_MEAN": [0.5, 0],
            "PREV_NAME_TYPE_SUITE_SPOUSE_PARTNER_MEAN": [0.25, 0],
            "PREV_NAME_TYPE_SUITE_NAN_MEAN": [0.25, 1],
            "PREV_APPROVED_DAYS_FIRST_DUE_MEAN": [-200, NAN],
            "PREV_APPROVED_APPLICATION_CREDIT_RATIO_VAR": [0.5, NAN],
            "PREV_REFUSED_DAYS_FIRST_DUE_MIN": [NAN, NAN],
            "PREV_REFUSED_APPLICATION_CREDIT_RATIO_MAX": [NAN, 2],
        },
    )


def test_pos_cash(engine):
    tables = {
        "POS_CASH_balance": frame(
            "POS_CASH_balance",
            SK_ID_PREV=[1, 1, 2],
            SK_ID_CURR=[7, 7, 7],
            MONTHS_BALANCE=[-3, -2, -1],
            SK_DPD=[0, 5, 0],
            NAME_CONTRACT_STATUS=["Active", "Active", "Returned to the store"],
        )
    }
    spec = {
        "table": "POS_CASH_balance",
        "prefix": "POS",
        "count": True,
        "numeric": {
            "MONTHS_BALANCE": ["min", "max", "mean"],
            "SK_DPD": ["max", "mean"],
            "LATE": ["mean"],
        },
        "categorical": ["NAME_CONTRACT_STATUS"],
    }
    check(
        engine(tables, spec),
        [7],
        {
            "POS_MONTHS_BALANCE_MIN": [-3],
            "POS_MONTHS_BALANCE_MAX": [-1],
            "POS_MONTHS_BALANCE_MEAN": [-2],
            "POS_SK_DPD_MAX": [5],
            "POS_SK_DPD_MEAN": [5 / 3],
            "POS_LATE_MEAN": [1 / 3],
            "POS_NAME_CONTRACT_STATUS_ACTIVE_MEAN": [2 / 3],
            "POS_NAME_CONTRACT_STATUS_RETURNED_TO_THE_STORE_MEAN": [1 / 3],
            "POS_NAME_CONTRACT_STATUS_XNA_MEAN": [0],
            "POS_COUNT": [3],
        },
    )


def test_installments_lateness_and_payment_ratio_edge_cases(engine):
    tables = {
        "installments_payments": frame(
            "installments_payments",
            SK_ID_PREV=[1, 1, 1, 1, 2],
            SK_ID_CURR=[1, 1, 1, 1, 2],
            NUM_INSTALMENT_VERSION=[1.0, 1.0, 2.0, NAN, 1.0],
            DAYS_INSTALMENT=[-100.0, -50.0, -20.0, -10.0, -10.0],
            DAYS_ENTRY_PAYMENT=[-90.0, -60.0, NAN, -10.0, -5.0],  # late, early, unpaid, on time
            AMT_INSTALMENT=[100.0, 100.0, 0.0, 0.0, 0.0],
            AMT_PAYMENT=[50.0, 100.0, 10.0, 0.0, NAN],
        )
    }
    spec = {
        "table": "installments_payments",
        "prefix": "INSTAL",
        "count": True,
        "numeric": {
            "NUM_INSTALMENT_VERSION": ["nunique"],
            "DPD": ["max", "mean", "sum"],
            "DBD": ["max", "sum"],
            "PAYMENT_RATIO": ["max", "mean", "var"],  # 0.5, 1, 10/0 and 0/0 -> missing
            "PAYMENT_DIFF": ["sum"],
        },
    }
    check(
        engine(tables, spec),
        [1, 2],
        {
            "INSTAL_NUM_INSTALMENT_VERSION_NUNIQUE": [2, 1],
            "INSTAL_DPD_MAX": [10, 5],
            "INSTAL_DPD_MEAN": [10 / 3, 5],  # the unpaid instalment's lateness is unknown
            "INSTAL_DPD_SUM": [10, 5],
            "INSTAL_DBD_MAX": [10, 0],
            "INSTAL_DBD_SUM": [10, 0],
            "INSTAL_PAYMENT_RATIO_MAX": [1, NAN],
            "INSTAL_PAYMENT_RATIO_MEAN": [0.75, NAN],
            "INSTAL_PAYMENT_RATIO_VAR": [0.125, NAN],
            "INSTAL_PAYMENT_DIFF_SUM": [40, NAN],
            "INSTAL_COUNT": [4, 1],
        },
    )


def test_cards_utilisation_with_zero_limit(engine):
    tables = {
        "credit_card_balance": frame(
            "credit_card_balance",
            SK_ID_PREV=[1, 1, 1, 2],
            SK_ID_CURR=[1, 1, 1, 2],
            AMT_BALANCE=[50.0, 100.0, 30.0, NAN],
            AMT_CREDIT_LIMIT_ACTUAL=[100, 0, 60, 0],
            SK_DPD=[0, 3, 0, 0],
            NAME_CONTRACT_STATUS=["Active", "Active", "Completed", "Sent proposal"],
        )
    }
    spec = {
        "table": "credit_card_balance",
        "prefix": "CC",
        "count": True,
        "numeric": {
            "UTILISATION": ["min", "max", "mean", "sum", "var"],  # 0.5, 100/0 -> missing, 0.5
            "AMT_BALANCE": ["sum"],
            "SK_DPD": ["max"],
            "LATE": ["mean"],
        },
        "categorical": ["NAME_CONTRACT_STATUS"],
    }
    check(
        engine(tables, spec),
        [1, 2],
        {
            "CC_UTILISATION_MIN": [0.5, NAN],
            "CC_UTILISATION_MAX": [0.5, NAN],
            "CC_UTILISATION_MEAN": [0.5, NAN],
            "CC_UTILISATION_SUM": [1, NAN],
            "CC_UTILISATION_VAR": [0, NAN],
            "CC_AMT_BALANCE_SUM": [180, NAN],
            "CC_SK_DPD_MAX": [3, 0],
            "CC_LATE_MEAN": [1 / 3, 0],
            "CC_NAME_CONTRACT_STATUS_ACTIVE_MEAN": [2 / 3, 0],
            "CC_NAME_CONTRACT_STATUS_SENT_PROPOSAL_MEAN": [0, 1],
            "CC_COUNT": [3, 1],
        },
    )


# --- the default spec on generated data ---------------------------------------------------


@pytest.fixture(scope="module")
def history(synthetic) -> dict[str, pd.DataFrame]:
    return {name: synthetic[name] for name in HISTORY}


@pytest.fixture(scope="module")
def fast(history) -> pd.DataFrame:
    return run_polars(history, DEFAULT)


def test_polars_and_pandas_agree_on_every_value(history, fast):
    reference = aggregate_reference(history, DEFAULT)
    assert list(fast.columns) == list(reference.columns)
    np.testing.assert_array_equal(fast[KEY], reference[KEY])
    ours, theirs = fast.drop(columns=KEY).to_numpy(), reference.drop(columns=KEY).to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    # The stage rounds to a 26-bit mantissa (DROPPED_BITS); the reference keeps every bit.
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=0, equal_nan=True)


def test_output_shape_dtypes_and_applicants(synthetic, fast):
    assert fast.columns[0] == KEY and fast[KEY].dtype == "int64"
    assert fast[KEY].is_monotonic_increasing and fast[KEY].is_unique
    assert (fast.drop(columns=KEY).dtypes == "float64").all()
    assert fast.shape[1] - 1 == sum(len(g.columns) for g in DEFAULT)
    assert fast.shape[1] - 1 > 500
    assert not np.isinf(fast.drop(columns=KEY).to_numpy()).any()
    # exactly the applicants with some history; the others are left to the features stage
    seen = set().union(*(set(synthetic[t][KEY]) for t in HISTORY if KEY in synthetic[t]))
    assert set(fast[KEY]) == seen
    applicants = set(synthetic["application_train"][KEY]) | set(synthetic["application_test"][KEY])
    assert seen < applicants


def test_column_names_are_stable_and_follow_the_pattern(fast):
    tiny = generate(n_train=200, n_test=40, seed=11)
    other = run_polars({name: tiny[name] for name in HISTORY}, DEFAULT)
    assert list(other.columns) == list(fast.columns)
    aggs = "MIN|MAX|MEAN|SUM|VAR|SIZE|NUNIQUE"
    pattern = re.compile(rf"({'|'.join(PREFIXES)})_([A-Z0-9_]+_({aggs})|COUNT)")
    assert [c for c in fast.columns[1:] if not pattern.fullmatch(c)] == []
    assert "BURO_ACTIVE_AMT_CREDIT_SUM_MEAN" in fast.columns
    assert "PREV_NAME_TYPE_SUITE_SPOUSE_PARTNER_MEAN" in fast.columns


def test_disabling_a_group_drops_exactly_its_columns(history, fast):
    enabled = [g for g in PARAMS["aggregate"]["groups"] if g != "pos"]
    fewer = run_polars(history, plan_groups(SPECS, enabled=enabled))
    assert list(fewer.columns) == [c for c in fast.columns if not c.startswith("POS_")]
    # applicants seen only in POS_CASH_balance leave with the group; the rest keep their values
    kept = fast[fast[KEY].isin(fewer[KEY])][fewer.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(fewer, kept)


def test_share_labels_are_sanitised_and_never_collide():
    column = Column("C", CATEGORY, nullable=True, levels=("a b", "A-B", "a_b", "+", "Nan"))
    labels = [label for _, label in share_labels(column)]
    assert labels == ["A_B", "A_B_2", "A_B_3", "BLANK", "NAN", "NAN_2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["bureau"]["numeric"].update(NOPE=["mean"]), "NOPE is not a numeric"),
        (lambda s: s["bureau"]["numeric"].update(DAYS_CREDIT=["median"]), "unknown aggregation"),
        (lambda s: s["pos"].update(categorical=["SK_DPD"]), "SK_DPD is not a categorical"),
        (lambda s: s["previous"]["subsets"]["REFUSED"].update(level="No"), "'No' is not a level"),
        (lambda s: s["cards"].update(prefix="POS"), "produced more than once"),
        (lambda s: s["pos"].update(numerics={}), r"unknown key\(s\) \['numerics'\]"),
    ],
)
def test_a_bad_spec_fails_before_reading_data(change, message):
    specs = yaml.safe_load(yaml.safe_dump(SPECS))
    change(specs)
    with pytest.raises(SpecError, match=message):
        plan_groups(specs, enabled=PARAMS["aggregate"]["groups"])


# --- the stage: in process for what it writes, as DVC runs it for how it fails -------------


@pytest.fixture
def workdir(history, tmp_path) -> Path:
    """The raw history tables and the stage's params; the spec stays the repository's."""
    write_tables(history, tmp_path / "data/raw")
    params = {
        "data": {"raw_dir": "data/raw"},
        "engine": PARAMS["engine"],
        "aggregate": {**PARAMS["aggregate"], "spec": str(SPEC)},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_stage_writes_the_aggregates(workdir, fast, caplog):
    with caplog.at_level(logging.INFO):
        run_stage("aggregate", workdir)
    assert "bureau: 128 columns" in caplog.text  # per-group progress is logged
    written = pd.read_parquet(workdir / PARAMS["aggregate"]["out"])
    pd.testing.assert_frame_equal(written, fast)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda raw: (raw / "installments_payments.parquet").unlink(), "installments_payments: "),
        (
            lambda raw: (
                pd.read_parquet(raw / "bureau.parquet")
                .drop(columns="DAYS_CREDIT")
                .to_parquet(raw / "bureau.parquet")
            ),
            "bureau.DAYS_CREDIT: missing column",
        ),
    ],
    ids=["missing table", "missing column"],
)
def test_bad_input_exits_non_zero_and_keeps_the_last_output(workdir, breakage, expected):
    breakage(workdir / "data/raw")
    out = workdir / PARAMS["aggregate"]["out"]
    out.parent.mkdir(parents=True)
    out.write_text("the last good output")

    done = run_stage("aggregate", workdir, in_process=False, timeout=300)
    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # nothing half-written
    assert out.read_text() == "the last good output"


def test_no_groups_is_the_application_only_model():
    empty = aggregate({}, plan_groups(SPECS, enabled=[]))
    assert empty.columns == ["SK_ID_CURR"] and empty.height == 0


def test_canonical_rounding_absorbs_last_bit_noise():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1e6, 10_000), [232188.125, -0.5, 0.0, 3.0, NAN]])
    noisy = values * (1 + rng.choice([-4, -1, 0, 1, 4], len(values)) * np.finfo(float).eps)
    np.testing.assert_array_equal(canonical(noisy), canonical(values))
    np.testing.assert_allclose(canonical(values), values, rtol=2**-26)
    assert canonical(np.array([232188.125]))[0] == 232188.125  # exact values stay exact
