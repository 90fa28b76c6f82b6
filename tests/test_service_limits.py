"""The contract's hard limits, the required fields and the training range, over real HTTP.

Impossible applicants are a 400 naming the field and the limit, before anyone is scored; an
applicant without a required amount is a 400 naming it; a value inside the limits but outside
what the model saw in training is scored, with a warning naming it.
"""

from __future__ import annotations

import json

import httpx
import pytest

from credit_scoring.serving.requests import REQUIRED
from tests.support.servers import Server

pytestmark = pytest.mark.slow

MINIMAL = {
    "AMT_INCOME_TOTAL": 150000,
    "AMT_CREDIT": 500000,
    "AMT_ANNUITY": 25000,
    "EXT_SOURCE_1": 0.5,
}
IMPOSSIBLE = [
    ("EXT_SOURCE_2", 7.0, "7.0 is above the maximum 1 of EXT_SOURCE_2"),
    ("CNT_CHILDREN", -3, "-3 is below the minimum 0 of CNT_CHILDREN"),
    ("AMT_INCOME_TOTAL", -5, "-5 is below the minimum 0 of AMT_INCOME_TOTAL"),
    ("DAYS_BIRTH", 500, "500 is above the maximum -6574.5 of DAYS_BIRTH"),
]


def post(server: Server, endpoint: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/{endpoint}", json=body, timeout=60)


@pytest.fixture(scope="module")
def inputs(packaged) -> dict[str, dict]:
    """The package's request fields by name, as the package stage wrote them."""
    folder = packaged["work"] / packaged["params"]["package"]["dir"]
    return {f["name"]: f for f in json.loads((folder / "inputs.json").read_text())["fields"]}


@pytest.mark.parametrize(("field", "value", "message"), IMPOSSIBLE)
def test_an_impossible_applicant_is_a_400_naming_the_field_and_the_limit(
    service, field, value, message
):
    body = {"features": {**MINIMAL, field: value}}
    for endpoint in ("predict", "explain"):
        response = post(service, endpoint, body)
        assert response.status_code == 400, response.text
        (problem,) = response.json()["detail"]
        assert problem == {"loc": ["features", field], "msg": message, "type": "out_of_limits"}
        assert response.json()["error"] == f"features.{field}: {message}"
    batch = post(service, "predict_batch", {"applicants": [{"features": MINIMAL}, body]})
    assert batch.status_code == 400, batch.text
    assert batch.json()["detail"] == [
        {"loc": ["applicants", 1, "features", field], "msg": message, "type": "out_of_limits"}
    ]


@pytest.mark.parametrize("missing", ["AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY"])
def test_a_missing_required_amount_is_a_400_naming_it(service, missing):
    for features in (
        {k: v for k, v in MINIMAL.items() if k != missing},
        {**MINIMAL, missing: None},
    ):
        response = post(service, "predict", {"features": features})
        assert response.status_code == 400, response.text
        assert response.json()["detail"] == [
            {"loc": ["features", missing], "msg": REQUIRED, "type": "missing_required"}
        ]


def test_an_empty_applicant_is_a_400_naming_every_required_amount(service):
    for endpoint in ("predict", "explain"):
        response = post(service, endpoint, {"features": {}})
        assert response.status_code == 400, response.text
        assert [p["loc"][-1] for p in response.json()["detail"]] == [
            "AMT_INCOME_TOTAL",
            "AMT_CREDIT",
            "AMT_ANNUITY",
        ]


def test_the_payload_existing_clients_send_is_scored(service):
    response = post(service, "predict", {"features": MINIMAL})
    assert response.status_code == 200, response.text
    out = response.json()
    assert 0 < out["probability"] < 1 and out["warnings"] == []


def test_a_value_beyond_the_training_range_is_scored_with_a_warning(service, inputs):
    income = inputs["AMT_INCOME_TOTAL"]
    value = 2 * income["seen_max"]  # inside the hard limits (at least 0), beyond training
    warning = (
        f"AMT_INCOME_TOTAL: {value:g} is above the largest value seen in training "
        f"({income['seen_max']:g})"
    )
    body = {"features": {**MINIMAL, "AMT_INCOME_TOTAL": value}}
    for endpoint in ("predict", "explain"):
        response = post(service, endpoint, body)
        assert response.status_code == 200, response.text
        assert response.json()["warnings"] == [warning]
    batch = post(service, "predict_batch", {"applicants": [{"features": MINIMAL}, body]})
    assert batch.status_code == 200, batch.text
    assert [r["warnings"] for r in batch.json()["results"]] == [[], [warning]]
    # on the training edge itself, no warning
    edge = {"features": {**MINIMAL, "AMT_INCOME_TOTAL": income["seen_max"]}}
    assert post(service, "predict", edge).json()["warnings"] == []


def test_the_schema_states_the_limits_the_ranges_and_the_required_fields(service, inputs):
    fields = {f["name"]: f for f in post(service, "schema", {}).json()["fields"]}
    assert set(fields) == set(inputs)
    for name, field in inputs.items():  # what the package stage wrote, the form's keys included
        assert field.items() <= fields[name].items(), name
    assert {name for name, f in fields.items() if f.get("required")} == {
        "AMT_INCOME_TOTAL",
        "AMT_CREDIT",
        "AMT_ANNUITY",
    }
    ext = fields["EXT_SOURCE_2"]
    assert (ext["type"], ext["min"], ext["max"]) == ("number", 0, 1)
    assert 0 <= ext["seen_min"] < ext["seen_max"] <= 1
    assert fields["DAYS_EMPLOYED"]["allowed_extra"] == [365243]
    assert fields["CNT_CHILDREN"]["min"] == 0
    assert "seen_min" not in fields["CODE_GENDER"]  # audited, never scored
