"""The service's HTTP edge over real HTTP: media types, the body limit, 404s, the API key, the
probes under load, the OpenAPI document, and a fuzzer generating requests from that document.

The `keyed` service reads its key from a secret file, as a container would mount it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from conftest import KEY_VALUE
from credit_scoring.contract.tables import KEY
from credit_scoring.serving.settings import Settings, SettingsError
from credit_scoring.ui.client import ServiceClient, ServiceError
from tests.support.servers import Server

pytestmark = pytest.mark.slow

POSTS = ["predict", "predict_batch", "explain", "decide", "applicant", "model_info", "schema"]


@pytest.fixture(scope="module")
def known(packaged) -> list[int]:
    """Ids of the packaged test population, whose applications the service holds."""
    params, work = packaged["params"], packaged["work"]
    frame = pd.read_parquet(work / params["data"]["raw_dir"] / "application_test.parquet")
    return [int(i) for i in frame[KEY].head(40)]


def applicant(server: Server, client_id: int, **headers: str) -> dict[str, Any]:
    """A stored applicant as the service hands it out, ready to score (missing fields left out)."""
    answer = httpx.post(
        f"{server.url}/applicant", json={"client_id": client_id}, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    stated = {k: v for k, v in answer.json()["features"].items() if v is not None}
    return {"features": stated, "client_id": client_id}


def scorable(server: Server, known: list[int], **headers: str) -> dict[str, Any]:
    """The first stored applicant who states every amount a decision needs."""
    for client_id in known:
        body = applicant(server, client_id, **headers)
        if {"AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY"} <= set(body["features"]):
            return body
    raise AssertionError("no stored applicant states the three amounts")


@pytest.mark.parametrize(
    "media",
    ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain", "application/xml"],
)
def test_a_body_not_declared_as_json_is_a_415_naming_the_header(service, media):
    for endpoint in POSTS:
        answer = httpx.post(
            f"{service.url}/{endpoint}", content=b"{}", headers={"content-type": media}
        )
        assert answer.status_code == 415, (endpoint, answer.text)
        problem = answer.json()["detail"][0]
        assert problem["loc"] == ["header", "Content-Type"]
        assert media in problem["msg"] and "application/json" in problem["msg"]


def test_json_with_a_charset_or_no_declaration_is_scored(service, known):
    body = scorable(service, known)
    content = httpx.Request("POST", "/", json=body).content
    for headers in ({"content-type": "application/json; charset=utf-8"}, {}):
        answer = httpx.post(f"{service.url}/predict", content=content, headers=headers)
        assert answer.status_code == 200, answer.text
        assert 0 < answer.json()["probability"] < 1


@pytest.mark.parametrize("text", ["[1, 2]", '"applicant"', "null", "7", '{"features": '])
def test_a_body_that_is_not_a_json_object_is_a_400_saying_so(service, text):
    answer = httpx.post(
        f"{service.url}/predict", content=text, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    msg = answer.json()["detail"][0]["msg"]
    assert "object" in msg or "Invalid JSON" in msg or "EOF" in msg, msg


def test_a_chunked_body_is_counted_as_it_arrives(service, known):
    """No Content-Length: the limit counts the bytes received (16 MiB by default)."""

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"features": {"NAME_CONTRACT_TYPE": "'
        for _ in range(total // 2**20):
            yield b"a" * 2**20
        yield b'"}}'

    over = httpx.post(
        f"{service.url}/predict",
        content=chunks(17 * 2**20),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert over.status_code == 413, over.text[:300]
    assert over.json()["detail"][0] == {
        "loc": ["body"],
        "msg": f"over the limit of {16 * 2**20} bytes",
        "type": "too_large",
    }
    content = httpx.Request("POST", "/", json=scorable(service, known)).content
    under = httpx.post(
        f"{service.url}/predict",
        content=iter([content[:100], content[100:]]),
        headers={"content-type": "application/json"},
    )
    assert under.status_code == 200, under.text
    assert under.request.headers.get("transfer-encoding") == "chunked"


def test_what_the_service_does_not_hold_is_a_404(service, known):
    body = scorable(service, known)
    for endpoint in ("predict", "explain"):
        answer = httpx.post(f"{service.url}/{endpoint}", json={**body, "client_id": 1})
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"][0]["type"] == "unknown_client"
    batch = httpx.post(
        f"{service.url}/predict_batch", json={"applicants": [body, {**body, "client_id": 1}]}
    )
    assert batch.status_code == 404, batch.text
    assert batch.json()["detail"][0]["loc"] == ["applicants", 1, "client_id"]
    stored = httpx.post(f"{service.url}/applicant", json={"client_id": 1})
    assert stored.status_code == 404 and stored.json()["detail"][0]["loc"] == ["client_id"]
    # A request with a malformed field as well is a 400 that names both.
    both = httpx.post(
        f"{service.url}/predict",
        json={"features": {**body["features"], "EXT_SOURCE_2": 7.0}, "client_id": 1},
    )
    assert both.status_code == 400
    assert {p["type"] for p in both.json()["detail"]} == {"out_of_limits", "unknown_client"}


def test_the_probes_answer_while_a_large_batch_and_a_full_explain_are_scored(service, known):
    """Scoring runs off the event loop: a probe sent while a 2,000-applicant batch is scored
    comes back before the batch does (how fast is measured in benchmarks.serving)."""
    body = scorable(service, known)
    batch = {"applicants": [body] * 2000}
    everything = {**body, "top_k": len(httpx.post(f"{service.url}/schema").json()["fields"])}
    with ThreadPoolExecutor(1) as pool:
        for endpoint, payload in (("predict_batch", batch), ("explain", everything)):
            scored = pool.submit(httpx.post, f"{service.url}/{endpoint}", json=payload, timeout=120)
            probed_during = 0
            with httpx.Client(base_url=service.url, timeout=30) as probes:
                while not scored.done():
                    for probe in ("/readyz", "/livez"):
                        assert probes.get(probe).status_code == 200
                    probed_during += not scored.done()
            answer = scored.result()
            assert answer.status_code == 200, answer.text[:300]
            if endpoint == "predict_batch":
                assert answer.json()["count"] == 2000
                assert probed_during >= 2, "the probes waited for the batch"


def test_the_api_key_is_asked_everywhere_but_the_probes_and_metrics(keyed, known):
    for endpoint in POSTS:
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789abc"}):
            answer = httpx.post(f"{keyed.url}/{endpoint}", json={}, headers=headers)
            assert answer.status_code == 401, (endpoint, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["header", "X-API-Key"]
    assert httpx.get(f"{keyed.url}/docs.json").status_code == 401
    for probe in ("/livez", "/readyz", "/healthz", "/metrics"):
        assert httpx.get(f"{keyed.url}{probe}").status_code == 200, probe
    body = scorable(keyed, known, **{"X-API-Key": KEY_VALUE})
    answer = httpx.post(f"{keyed.url}/predict", json=body, headers={"X-API-Key": KEY_VALUE})
    assert answer.status_code == 200 and 0 < answer.json()["probability"] < 1
    document = httpx.get(f"{keyed.url}/docs.json", headers={"X-API-Key": KEY_VALUE}).json()
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert "security" not in document["paths"]["/readyz"]["get"]
    assert all(document["paths"][f"/{e}"]["post"]["security"] for e in POSTS)


def test_the_screen_sends_the_key_and_says_when_it_has_none(keyed):
    with_key = ServiceClient(keyed.url, api_key=KEY_VALUE)
    assert with_key.schema()["fields"]
    with pytest.raises(ServiceError, match="asks for an API key"):
        ServiceClient(keyed.url).schema()


def test_the_key_comes_from_the_environment_or_a_file_and_a_bad_one_stops_the_service(tmp_path):
    secret = tmp_path / "key"
    secret.write_text(f"{KEY_VALUE}\n")
    assert Settings.from_env({"CREDIT_SCORING_API_KEY": KEY_VALUE}).api_key == KEY_VALUE
    assert Settings.from_env({"CREDIT_SCORING_API_KEY_FILE": str(secret)}).api_key == KEY_VALUE
    assert Settings.from_env({}).api_key is None
    assert KEY_VALUE not in repr(Settings.from_env({"CREDIT_SCORING_API_KEY": KEY_VALUE}))
    for env, words in [
        ({"CREDIT_SCORING_API_KEY": "short"}, "at least 16"),
        ({"CREDIT_SCORING_API_KEY_FILE": str(tmp_path / "absent")}, "cannot read"),
        ({"CREDIT_SCORING_API_KEY": KEY_VALUE, "CREDIT_SCORING_API_KEY_FILE": str(secret)}, "one"),
    ]:
        with pytest.raises(SettingsError, match=words):
            Settings.from_env(env)


def test_the_document_states_every_answer_and_what_the_validator_accepts(service):
    document = httpx.get(f"{service.url}/docs.json").json()
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"]["detail"]["type"] == "array"
    for endpoint in POSTS:
        responses = document["paths"][f"/{endpoint}"]["post"]["responses"]
        assert {"200", "400", "413", "415"} <= set(responses), endpoint
        assert "500" not in responses
    assert {"404", "503"} <= set(document["paths"]["/predict"]["post"]["responses"])
    assert "409" in document["paths"]["/decide"]["post"]["responses"]
    features = schemas["Features"]
    assert features["additionalProperties"] is False
    assert set(features["required"]) == {"AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY"}
    ext = features["properties"]["EXT_SOURCE_2"]["anyOf"][0]
    assert (ext["minimum"], ext["maximum"]) == (0, 1)
    employed = features["properties"]["DAYS_EMPLOYED"]["anyOf"]
    assert {"enum": [365243.0]} in employed or {"enum": [365243]} in employed
    reason = schemas["decide_request"]["properties"]["reason"]
    assert "VERIFIED_INCOME" in reason["enum"]


def test_a_fuzzer_generating_requests_from_the_document_finds_nothing(keyed, tmp_path):
    """Schemathesis: every phase, every check; no server error, no answer off its schema, no
    valid request refused and no invalid one accepted, over more than 1,000 cases."""
    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [
            *(str(st), "run", f"{keyed.url}/docs.json", "--header", f"X-API-Key: {KEY_VALUE}"),
            *("--checks", "all", "--max-examples", "25", "--workers", "1", "--seed", "1"),
            *("--request-timeout", "60", "--generation-database", "none"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated, out[-3000:]
    assert int(generated.group(1)) >= 1000 and generated.group(1) == generated.group(2), out[-3000:]
