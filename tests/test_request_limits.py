"""The service's request checks against the contract's hard limits, the required fields and the
training range, on schemas built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.tables import Limits, load_contract
from credit_scoring.errors import ConfigError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.serving.packaging import training_ranges
from credit_scoring.serving.requests import REQUIRED, Field, RequestSchema

SCHEMA = RequestSchema(
    [
        Field("EXT_SOURCE_2", "number", limits=Limits(minimum=0, maximum=1), seen=(0.01, 0.85)),
        Field("AMT_INCOME_TOTAL", "number", limits=Limits(minimum=0), seen=(25650, 1.17e8)),
        Field("AMT_CREDIT", "number", limits=Limits(minimum=0), required=True),
        Field("CNT_CHILDREN", "integer", limits=Limits(minimum=0), seen=(0, 7)),
        Field("DAYS_BIRTH", "integer", limits=Limits(minimum=-36525, maximum=-6574.5)),
        Field(
            "DAYS_EMPLOYED",
            "integer",
            limits=Limits(maximum=0, allowed_extra=(365243,)),
            seen=(-17000, -17),
        ),
        Field("FLAG_MOBIL", "integer", limits=Limits(values=(0, 1))),
        Field("CODE_GENDER", "category", ("F", "M", "XNA"), audited=True),
    ]
)
CREDIT = {"AMT_CREDIT": 500000}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("EXT_SOURCE_2", 7.0, "7.0 is above the maximum 1 of EXT_SOURCE_2"),
        ("EXT_SOURCE_2", -0.1, "-0.1 is below the minimum 0 of EXT_SOURCE_2"),
        ("CNT_CHILDREN", -3, "-3 is below the minimum 0 of CNT_CHILDREN"),
        ("AMT_INCOME_TOTAL", -5, "-5 is below the minimum 0 of AMT_INCOME_TOTAL"),
        ("DAYS_BIRTH", 500, "500 is above the maximum -6574.5 of DAYS_BIRTH"),
        ("DAYS_EMPLOYED", 3, "3 is above the maximum 0 of DAYS_EMPLOYED (365243 is allowed too)"),
        ("FLAG_MOBIL", 2, "2 is not one of [0, 1], the values of FLAG_MOBIL"),
    ],
)
def test_a_value_over_a_hard_limit_is_named_with_the_limit(field, value, message):
    found = SCHEMA.problems({**CREDIT, field: value})
    assert [(p.loc, p.msg, p.type) for p in found] == [
        (("features", field), message, "out_of_limits")
    ]


def test_values_on_the_limits_and_the_placeholder_are_accepted():
    inside = {"EXT_SOURCE_2": 1, "CNT_CHILDREN": 0, "DAYS_BIRTH": -6575, "FLAG_MOBIL": 1.0}
    assert SCHEMA.problems({**CREDIT, **inside, "DAYS_EMPLOYED": 365243}) == []
    # a wrong type is still named as such, not as a limit
    assert SCHEMA.problems({**CREDIT, "CNT_CHILDREN": -0.5})[0].type == "invalid_integer"


def test_a_required_field_absent_or_null_is_named():
    for features in ({}, {"AMT_CREDIT": None}, {"EXT_SOURCE_2": 0.5}):
        found = SCHEMA.problems(features)
        assert [(p.loc, p.msg, p.type) for p in found] == [
            (("features", "AMT_CREDIT"), REQUIRED, "missing_required")
        ]
    assert REQUIRED == "required: a decision cannot be made without it"
    batch = SCHEMA.problems({"EXT_SOURCE_2": 9.0}, loc=("applicants", 3, "features"))
    assert [p.loc for p in batch] == [
        ("applicants", 3, "features", "EXT_SOURCE_2"),
        ("applicants", 3, "features", "AMT_CREDIT"),
    ]


def test_values_outside_the_training_range_are_warned_of_not_refused():
    names = ["EXT_SOURCE_2", "AMT_INCOME_TOTAL", "DAYS_EMPLOYED", "DAYS_BIRTH", "OTHER"]
    matrix = np.array(
        [
            [0.9, 9.5e8, 365243, -30000, 1e9],  # DAYS_BIRTH and OTHER have no recorded range
            [np.nan, 30000, -20000, -10000, 0],
            [0.5, 30000, -100, -10000, 0],
        ]
    )
    assert SCHEMA.warnings(names, matrix) == [
        [
            "EXT_SOURCE_2: 0.9 is above the largest value seen in training (0.85)",
            "AMT_INCOME_TOTAL: 9.5e+08 is above the largest value seen in training (1.17e+08)",
        ],
        ["DAYS_EMPLOYED: -20000 is below the smallest value seen in training (-17000)"],
        [],
    ]
    assert SCHEMA.problems({**CREDIT, "EXT_SOURCE_2": 0.9}) == []


def test_the_schema_carries_limits_ranges_and_required_fields_through_json():
    again = RequestSchema.from_dict(SCHEMA.to_dict())
    assert again.fields == SCHEMA.fields and again.required == ("AMT_CREDIT",)
    ext = SCHEMA.to_dict()["fields"][0]
    assert ext == {
        "name": "EXT_SOURCE_2",
        "type": "number",
        "min": 0,
        "max": 1,
        "seen_min": 0.01,
        "seen_max": 0.85,
    }


def served_schema(required: tuple[str, ...]) -> RequestSchema:
    contract = load_contract()["application_train"]
    schema = FeatureSchema(
        numeric=("AMT_INCOME_TOTAL", "EXT_SOURCE_2", "DAYS_EMPLOYED"),
        categorical={"NAME_INCOME_TYPE": contract.column("NAME_INCOME_TYPE").levels},
        aggregates=(),
        audited=("CODE_GENDER",),
    )
    development = pd.DataFrame(
        {
            "AMT_INCOME_TOTAL": [30000.0, 90000.0, np.nan],
            "EXT_SOURCE_2": [0.2, np.nan, 0.7],
            "DAYS_EMPLOYED": [np.nan, np.nan, np.nan],
        }
    )
    seen = training_ranges(development, schema.numeric)
    assert seen == {"AMT_INCOME_TOTAL": (30000.0, 90000.0), "EXT_SOURCE_2": (0.2, 0.7)}
    return RequestSchema.from_contract(
        contract, schema, order=[], describe=str, seen=seen, required=required
    )


def test_from_contract_takes_the_limits_from_the_contract_and_the_rest_from_the_stage():
    schema = served_schema(("AMT_INCOME_TOTAL",))
    fields = schema.fields
    assert fields["EXT_SOURCE_2"].limits == Limits(minimum=0, maximum=1)
    assert fields["EXT_SOURCE_2"].seen == (0.2, 0.7)
    assert fields["DAYS_EMPLOYED"].limits == Limits(maximum=0, allowed_extra=(365243,))
    assert fields["DAYS_EMPLOYED"].seen is None  # missing throughout: nothing to compare with
    assert not fields["NAME_INCOME_TYPE"].limits and fields["CODE_GENDER"].audited
    assert schema.required == ("AMT_INCOME_TOTAL",)
    # the plain contract table still works: limits, but no ranges and nothing required
    plain = RequestSchema.from_contract(
        load_contract()["application_train"],
        FeatureSchema(("EXT_SOURCE_2",), {}, ()),
        order=[],
        describe=str,
    )
    assert plain.fields["EXT_SOURCE_2"].seen is None and plain.required == ()
    assert plain.fields["EXT_SOURCE_2"].limits == Limits(minimum=0, maximum=1)


def test_a_required_field_that_is_no_input_is_a_config_error():
    with pytest.raises(ConfigError, match=r"package\.required: \['AMT_CREDITT'\]"):
        served_schema(("AMT_CREDITT",))
