"""Unit tests of the service's parts: validation, plain-language names, versions, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest

from credit_scoring.features.descriptions import describe
from credit_scoring.serving.api import explain_request
from credit_scoring.serving.package import Package, package_version
from credit_scoring.serving.requests import Field, RequestSchema
from credit_scoring.serving.settings import CONTAINER_RECORD, Settings, SettingsError

SCHEMA = RequestSchema(
    [
        Field("AMT_CREDIT", "number"),
        Field("CNT_CHILDREN", "integer"),
        Field("CODE_GENDER", "category", ("F", "M", "XNA")),
    ]
)


@pytest.mark.parametrize(
    ("features", "problem"),
    [
        ({"AMT_CREDIT": 1.0, "CNT_CHILDREN": 2, "CODE_GENDER": "XNA"}, None),
        ({"AMT_CREDIT": None, "CNT_CHILDREN": 2.0}, None),
        ({"AMT_CREDT": 1.0}, "unknown field; did you mean AMT_CREDIT?"),
        ({"zzz": 1.0}, "unknown field; see the schema endpoint"),
        ({"AMT_CREDIT": "1"}, "expected a number, got str"),
        ({"AMT_CREDIT": False}, "expected a number, got bool"),
        ({"AMT_CREDIT": float("nan")}, "expected a finite number, got nan"),
        ({"CNT_CHILDREN": 0.5}, "expected a whole number, got 0.5"),
        ({"AMT_CREDIT": 10**400}, "expected a number of at most 2**53 in size"),
        ({"CODE_GENDER": "f"}, "'f' is not a level of CODE_GENDER; allowed: ['F', 'M', 'XNA']"),
    ],
)
def test_validation_names_the_field_and_the_problem(features, problem):
    found = SCHEMA.problems(features)
    if problem is None:
        assert found == []
    else:
        assert [p.msg for p in found] == [problem]
        assert found[0].loc[0] == "features"


def test_plain_language_names():
    assert describe("EXT_SOURCE_MEAN") == "average external credit score"
    assert describe("BURO_ACTIVE_AMT_CREDIT_SUM_DEBT_MAX") == (
        "highest outstanding debt (active credit-bureau loans)"
    )
    assert describe("INSTAL_DPD_MEAN") == "average days past due (instalment payments)"
    assert describe("PREV_REFUSED_COUNT") == "number of refused previous applications"
    assert describe("BURO_MONTHS_BALANCE_SIZE_SUM") == (
        "total number of months balance (credit-bureau loans)"
    )
    assert describe("FLAG_DOCUMENT_3") == "provided document 3"
    assert describe("PREV_NAME_CONTRACT_STATUS_REFUSED_MEAN") == (
        "share with contract status 'refused' (previous applications)"
    )
    assert describe("BURO_STATUS_X_MEAN_MEAN") == (
        "average share of months with status 'x' (credit-bureau loans)"
    )
    assert describe("LANDAREA_AVG") == "building's land area (average, normalised)"
    assert describe("FLOORSMAX_MEDI") == "building's highest floor (median, normalised)"


def test_version_follows_the_content():
    a = {"model.txt": "1" * 64, "threshold.json": "2" * 64}
    assert package_version(a) == package_version(dict(reversed(a.items())))
    assert package_version(a) != package_version({**a, "model.txt": "3" * 64})


def test_settings_default_when_unset_or_empty():
    assert Settings.from_env({}) == Settings.from_env({"CREDIT_SCORING_MAX_BATCH": " "})
    assert Settings.from_env({}) == Settings(
        model_tag="credit_scoring:latest",
        decision_log=Path("decisions.sqlite3"),
        max_batch=2000,
        max_body_bytes=16 * 2**20,
        workers=1,
        access_log=False,
        metrics=True,
        trace_rate=0.0,
    )


def test_in_the_image_the_record_defaults_to_the_volume_folder():
    image = {"BENTOML_CONTAINERIZED": "true"}
    assert Settings.from_env(image).decision_log == CONTAINER_RECORD
    chosen = {**image, "CREDIT_SCORING_DECISION_LOG": "/srv/records/d.sqlite3"}
    assert Settings.from_env(chosen).decision_log == Path("/srv/records/d.sqlite3")


def test_settings_read_every_variable():
    env = {
        "CREDIT_SCORING_MODEL": "credit_scoring:0123abcd",
        "CREDIT_SCORING_DECISION_LOG": "/var/log/decisions.sqlite3",
        "CREDIT_SCORING_MAX_BATCH": "50",
        "CREDIT_SCORING_MAX_BODY_MB": "0.5",
        "CREDIT_SCORING_WORKERS": "4",
        "CREDIT_SCORING_ACCESS_LOG": "True",
        "CREDIT_SCORING_METRICS": "0",
        "CREDIT_SCORING_TRACE_RATE": "0.25",
        "CREDIT_SCORING_RECORD_TIMEOUT": "2.5",
        "CREDIT_SCORING_RECORD_MAX_MB": "1",
        "CREDIT_SCORING_RETENTION_MONTHS": "84",
    }
    assert Settings.from_env(env) == Settings(
        model_tag="credit_scoring:0123abcd",
        decision_log=Path("/var/log/decisions.sqlite3"),
        record_timeout=2.5,
        record_max_bytes=2**20,
        retention_months=84,
        max_batch=50,
        max_body_bytes=2**19,
        workers=4,
        access_log=True,
        metrics=False,
        trace_rate=0.25,
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MODEL", "credit scoring", "expected a BentoML tag, name[:version]"),
        ("MODEL", "credit_scoring:v1:v2", "expected a BentoML tag, name[:version]"),
        ("MAX_BATCH", "2k", "expected a whole number of at least 1"),
        ("MAX_BATCH", "0", "expected a whole number of at least 1"),
        ("MAX_BODY_MB", "lots", "expected a positive number of MiB"),
        ("MAX_BODY_MB", "-1", "expected a positive number of MiB"),
        ("MAX_BODY_MB", "inf", "expected a positive number of MiB"),
        ("WORKERS", "1.5", "expected a whole number of at least 1"),
        ("ACCESS_LOG", "yes", "use true or false"),
        ("METRICS", "on", "use true or false"),
        ("TRACE_RATE", "1.5", "expected a share from 0 to 1"),
        ("TRACE_RATE", "nan", "expected a share from 0 to 1"),
        ("RECORD_TIMEOUT", "0", "expected a positive number of seconds"),
        ("RETENTION_MONTHS", "two years", "expected a whole number of at least 1"),
    ],
)
def test_a_bad_setting_names_its_variable_and_what_it_takes(name, value, expected):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({f"CREDIT_SCORING_{name}": value})
    assert str(raised.value) == f"CREDIT_SCORING_{name}={value!r}: {expected}"


def test_explain_request_bounds_top_k_by_the_feature_count():
    request = explain_request(features=3)
    assert request(features={}, top_k=3).top_k == 3
    assert request(features={}).top_k == 10
    for top_k in (0, 4):
        with pytest.raises(pydantic.ValidationError):
            request(features={}, top_k=top_k)


def test_the_package_looks_up_many_applicants_at_once(packaged):
    package = Package.load(packaged["work"] / "models" / "package")
    first, fifth, last = (int(package.known_ids[i]) for i in (0, 5, -1))
    stranger = last + 1
    assert package.held([first, stranger, last, 0]).tolist() == [True, False, True, False]
    assert package.held([]).tolist() == []
    rows = package.history([fifth, None, first])
    np.testing.assert_array_equal(rows[[0, 2]], package.known_history[[5, 0]])
    assert np.isnan(rows[1]).all()
    with pytest.raises(KeyError) as unknown:  # the first unknown id, as a 400 names it
        package.history([first, stranger, stranger + 1])
    assert unknown.value.args == (stranger,)
