"""The BentoML service over real HTTP: every endpoint, every bad input, parity, the decision log.

The `service` fixture serves a small pipeline run packaged into a fresh model store; the tests
compare its answers with the artifacts that run wrote.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from credit_scoring.contract.tables import KEY
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration, predict_pd
from credit_scoring.modelling.cross_validation import FINAL_FIT_STATEMENTS
from credit_scoring.modelling.decision import RiskBands
from credit_scoring.modelling.scorecard import Scorecard
from tests.support.servers import Server

pytestmark = pytest.mark.slow


def post(server: Server, endpoint: str, body: object, **options) -> httpx.Response:
    return httpx.post(f"{server.url}/{endpoint}", json=body, timeout=60, **options)


def records(frame: pd.DataFrame) -> list[dict]:
    """Application rows as a client sends them: JSON values, missing fields left out."""
    out = []
    for row in frame.drop(columns=[KEY, "TARGET"], errors="ignore").to_dict(orient="records"):
        out.append({k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))})
    return out


@pytest.fixture(scope="module")
def run(packaged) -> dict:
    """The packaged run's artifacts: raw test applications, the pipeline's features and model."""
    work = packaged["work"]
    params = packaged["params"]
    schema = FeatureSchema.from_json((work / params["features"]["schema"]).read_text())
    features = pd.read_parquet(work / params["features"]["test"])
    booster = lgb.Booster(model_file=str(work / params["train"]["model"]))
    calibration = Calibration.from_json((work / params["train"]["calibration"]).read_text())
    return {
        "applications": pd.read_parquet(
            work / params["data"]["raw_dir"] / "application_test.parquet"
        ),
        "expected": pd.Series(  # the pipeline's own model and calibration, not the package
            predict_pd(booster, calibration, features[list(schema.features)].to_numpy()),
            index=features[KEY],
        ),
        "threshold": json.loads((work / params["cost"]["out"]).read_text()),
        "schema": schema,
        # the scale as the package carries it (the package stage wrote it from params.yaml)
        "scorecard": Scorecard.from_json(
            (work / params["package"]["dir"] / "scorecard.json").read_text()
        ),
    }


def assert_points(decision: dict, run: dict) -> None:
    """A decision's score is its probability in points; its cut-off, the threshold's."""
    scorecard = run["scorecard"]
    assert decision["score"] == pytest.approx(scorecard.points(decision["probability"]), rel=1e-12)
    assert decision["cutoff_score"] == pytest.approx(
        scorecard.points(run["threshold"]["threshold"]), rel=1e-12
    )
    # The rule read in points: refuse when the score is at or below the cut-off.
    refused = decision["decision"] == "refuse"
    assert (decision["score"] <= decision["cutoff_score"]) == refused


def test_predict_returns_a_consistent_decision(service, run, packaged):
    app = run["applications"].iloc[0]
    body = {"features": records(run["applications"].iloc[[0]])[0], "client_id": int(app[KEY])}
    response = post(service, "predict", body)
    assert response.status_code == 200, response.text
    out = response.json()
    threshold = run["threshold"]["threshold"]
    assert out["threshold"] == threshold
    assert out["model_version"] == packaged["manifest"]["version"]
    assert out["client_id"] == app[KEY]
    assert 0 < out["probability"] < 1
    assert out["prediction"] == int(out["probability"] >= threshold)
    assert out["decision"] == ("refuse" if out["prediction"] else "approve")
    assert out["risk_band"] == RiskBands.from_dict(run["threshold"]["risk_bands"]).band(
        out["probability"]
    )
    assert len(out["request_id"]) == 32
    assert_points(out, run)
    assert run["scorecard"] == Scorecard.from_dict(packaged["params"]["scorecard"])


def test_prohibited_bases_are_accepted_and_audited_but_never_scored(service, run):
    schema = run["schema"]
    assert schema.audited == ("CODE_GENDER", "NAME_FAMILY_STATUS")
    assert not set(schema.audited) & set(schema.features)
    app = records(run["applications"].iloc[[1]])[0]
    answers = []
    for gender, status in (("M", "Married"), ("F", "Single / not married"), (None, None)):
        body = {"features": {**app, "CODE_GENDER": gender, "NAME_FAMILY_STATUS": status}}
        response = post(service, "predict", body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert len({a["probability"] for a in answers}) == 1  # the same score, whatever the basis
    for answer in answers:
        assert not {r["feature"] for r in answer["reasons"]} & set(schema.audited)
    bad = post(service, "predict", {"features": {**app, "CODE_GENDER": "Q"}})
    assert bad.status_code == 400  # still checked against the contract's levels
    assert bad.json()["detail"][0]["loc"] == ["features", "CODE_GENDER"]


def test_service_equals_the_pipeline_batch_prediction(service, run):
    """Parity to 1e-9 for 300 applicants, through the batch endpoint and one by one."""
    sample = run["applications"].head(300)
    ids = sample[KEY].astype(int).tolist()
    applicants = [
        {"features": f, "client_id": i} for f, i in zip(records(sample), ids, strict=True)
    ]
    batch = post(service, "predict_batch", {"applicants": applicants})
    assert batch.status_code == 200, batch.text
    got = np.array([r["probability"] for r in batch.json()["results"]])
    expected = run["expected"].loc[ids].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    scores = np.array([r["score"] for r in batch.json()["results"]])
    np.testing.assert_allclose(scores, run["scorecard"].points(got), rtol=1e-12, atol=0)
    for applicant, want in list(zip(applicants, expected, strict=True))[:40]:
        single = post(service, "predict", applicant).json()["probability"]
        assert abs(single - want) <= 1e-9


def test_batch_counts_decisions_and_answers_an_empty_batch(service, run):
    sample = run["applications"].head(50)
    applicants = [
        {"features": f, "client_id": int(i)}
        for f, i in zip(records(sample), sample[KEY], strict=True)
    ]
    out = post(service, "predict_batch", {"applicants": applicants}).json()
    assert out["count"] == 50 == len(out["results"])
    for result in out["results"]:
        assert_points(result, run)
    assert out["cutoff_score"] == out["results"][0]["cutoff_score"]
    assert out["refused"] == sum(r["decision"] == "refuse" for r in out["results"])
    assert out["approved"] == 50 - out["refused"]
    assert [r["client_id"] for r in out["results"]] == sample[KEY].tolist()
    empty = post(service, "predict_batch", {"applicants": []})
    assert empty.status_code == 200
    assert {k: empty.json()[k] for k in ("count", "approved", "refused", "results")} == {
        "count": 0,
        "approved": 0,
        "refused": 0,
        "results": [],
    }


def explained(service: Server, run: dict, row: int, top_k: int | None = None) -> dict:
    app = run["applications"].iloc[row]
    body = {"features": records(run["applications"].iloc[[row]])[0], "client_id": int(app[KEY])}
    if top_k:
        body["top_k"] = top_k
    response = post(service, "explain", body)
    assert response.status_code == 200, response.text
    return response.json()


def test_explain_contributions_add_up_to_the_log_odds(service, run):
    n = len(run["schema"].features)
    out = explained(service, run, 1, top_k=n)
    assert len(out["contributions"]) == n
    total = out["base_value"] + sum(c["contribution"] for c in out["contributions"])
    assert abs(total - out["log_odds"]) < 1e-6
    assert abs(out["other_contribution"]) < 1e-12
    p = out["probability"]
    assert abs(out["log_odds"] - math.log(p / (1 - p))) < 1e-6
    default = explained(service, run, 1)
    assert len(default["contributions"]) == 10
    tail = default["base_value"] + default["other_contribution"]
    assert (
        abs(tail + sum(c["contribution"] for c in default["contributions"]) - out["log_odds"])
        < 1e-6
    )
    # The same in points: the base and every contribution add up to the score.
    assert_points(out, run)
    factor, offset = run["scorecard"].factor, run["scorecard"].offset
    assert out["base_points"] == pytest.approx(offset - factor * out["base_value"], rel=1e-12)
    for c in out["contributions"]:
        assert c["points"] == pytest.approx(-factor * c["contribution"], rel=1e-12, abs=1e-12)
    in_points = out["base_points"] + sum(c["points"] for c in out["contributions"])
    assert in_points == pytest.approx(out["score"], abs=1e-6)
    tail = default["base_points"] + default["other_points"]
    in_points = tail + sum(c["points"] for c in default["contributions"])
    assert in_points == pytest.approx(out["score"], abs=1e-6)
    assert default["score"] == out["score"]
    strengths = [abs(c["contribution"]) for c in default["contributions"]]
    assert strengths == sorted(strengths, reverse=True)


def test_refusals_carry_up_to_four_reasons_and_approvals_none(service, run):
    decided = {"refuse": None, "approve": None}
    for row in range(len(run["applications"])):
        out = explained(service, run, row)
        if decided[out["decision"]] is None:
            decided[out["decision"]] = out
        if all(decided.values()):
            break
    refused, approved = decided["refuse"], decided["approve"]
    assert approved["reasons"] == []
    assert 1 <= len(refused["reasons"]) <= 4
    apps = run["applications"]
    body = {
        "features": records(apps[apps[KEY] == refused["client_id"]])[0],
        "client_id": refused["client_id"],
    }
    assert post(service, "predict", body).json()["reasons"] == refused["reasons"]  # as /explain
    everything = {**body, "top_k": len(run["schema"].features)}
    full = {c["feature"]: c for c in post(service, "explain", everything).json()["contributions"]}
    pushes = [r["contribution"] for r in refused["reasons"]]
    assert all(c > 0 for c in pushes)
    assert pushes == sorted(pushes, reverse=True)
    assert all(full[r["feature"]]["contribution"] > 0 for r in refused["reasons"])
    assert all(r["text"] and r["feature"] not in r["text"] for r in refused["reasons"])


BAD_INPUTS = [
    ({"features": {"AMT_CREDT": 1.0}}, ["features", "AMT_CREDT"], "did you mean AMT_CREDIT"),
    ({"features": {"AMT_CREDIT": "a lot"}}, ["features", "AMT_CREDIT"], "expected a number"),
    ({"features": {"AMT_CREDIT": True}}, ["features", "AMT_CREDIT"], "expected a number"),
    ({"features": {"CNT_CHILDREN": 1.5}}, ["features", "CNT_CHILDREN"], "whole number"),
    ({"features": {"AMT_CREDIT": 10**30}}, ["features", "AMT_CREDIT"], "at most 2**53"),
    ({"features": {"CODE_GENDER": "X"}}, ["features", "CODE_GENDER"], "not a level"),
    ({"features": {"CODE_GENDER": 1}}, ["features", "CODE_GENDER"], "as a string"),
    ({"features": {"SK_ID_CURR": 100002}}, ["features", "SK_ID_CURR"], "client_id"),
    ({"features": {"TARGET": 1}}, ["features", "TARGET"], "what the model predicts"),
    ({"features": {}, "client_id": 1}, ["client_id"], "not a known applicant"),
    ({"features": {}, "client_id": "100002"}, ["client_id"], "valid integer"),
    ({"feature": {}}, ["feature"], "Extra inputs"),
    ({"features": []}, ["features"], "should be an object"),
]


@pytest.mark.parametrize(("body", "loc", "message"), BAD_INPUTS)
def test_bad_input_is_a_400_naming_the_field(service, body, loc, message):
    for endpoint in ("predict", "explain"):
        response = post(service, endpoint, body)
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        problem = next(p for p in detail if p["loc"] == loc)
        assert message in problem["msg"], problem
    batch = post(service, "predict_batch", {"applicants": [{"features": {}}, body]})
    assert batch.status_code == 400, batch.text
    assert any(p["loc"] == ["applicants", 1, *loc] for p in batch.json()["detail"])


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(service, literal):
    body = f'{{"features": {{"AMT_INCOME_TOTAL": {literal}}}}}'
    response = httpx.post(
        f"{service.url}/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["features", "AMT_INCOME_TOTAL"]
    assert "finite" in problem["msg"]


def test_malformed_bodies_and_oversized_requests(service):
    headers = {"content-type": "application/json"}
    broken = httpx.post(f"{service.url}/predict", content='{"features": ', headers=headers)
    assert broken.status_code == 400
    assert "Invalid JSON" in broken.json()["detail"][0]["msg"]
    listed = httpx.post(f"{service.url}/predict", content="[1, 2]", headers=headers)
    assert listed.status_code == 400
    over = post(service, "predict_batch", {"applicants": [{"features": {}}] * 2001})
    assert over.status_code == 400
    assert over.json()["detail"][0]["loc"] == ["applicants"]
    assert "at most 2000" in over.json()["error"]
    huge = httpx.post(
        f"{service.url}/predict",
        content=b'{"features": {"x": "' + b"a" * (17 * 2**20) + b'"}}',
        headers=headers,
        timeout=60,
    )
    assert huge.status_code == 413
    assert "limit" in huge.json()["error"]


def test_model_info_schema_population_and_lookup(service, run, packaged):
    info = post(service, "model_info", {}).json()
    threshold = run["threshold"]
    assert info["version"] == packaged["manifest"]["version"]
    assert info["threshold"] == threshold["threshold"]
    scale = packaged["params"]["scorecard"]
    assert {k: info["scorecard"][k] for k in scale} == scale
    assert info["cutoff_score"] == info["scorecard"]["cutoff_score"]
    assert info["cutoff_score"] == pytest.approx(
        run["scorecard"].points(threshold["threshold"]), rel=1e-12
    )
    assert info["scorecard"]["factor"] == pytest.approx(scale["points_to_double"] / math.log(2))
    assert info["costs"] == threshold["costs"] == {"fn": 10, "fp": 1}
    assert info["cost_per_applicant"] == threshold["cost_per_applicant"]
    assert (
        info["policies"]["approve_all"]
        == threshold["policies"]["approve_all"]["cost_per_applicant"]
    )
    assert 0.5 < info["metrics"]["oof_auc"] < 1
    assert info["feature_count"] == len(run["schema"].features)
    assert info["data"]["n_train"] == 3000
    assert info["fitting"] == {
        "final_fit": "development",
        "statement": FINAL_FIT_STATEMENTS["development"],
        "refit_check": None,
    }
    assert datetime.fromisoformat(info["stored_at"]).tzinfo is not None
    assert len(info["importance"]) == 30
    assert min(c["cost_per_applicant"] for c in info["cost_curve"]) == pytest.approx(
        threshold["cost_per_applicant"], abs=0.02
    )

    fields = post(service, "schema", {}).json()["fields"]
    by_name = {f["name"]: f for f in fields}
    assert set(by_name) == {*run["schema"].inputs, *run["schema"].audited}
    assert {name for name, f in by_name.items() if f.get("audited")} == {
        "CODE_GENDER",
        "NAME_FAMILY_STATUS",
    }
    assert by_name["CODE_GENDER"]["type"] == "category"
    assert set(by_name["CODE_GENDER"]["levels"]) >= {"F", "M"}
    assert by_name["CNT_CHILDREN"]["type"] == "integer"
    assert by_name["AMT_CREDIT"]["type"] == "number"

    population = post(service, "population", {}).json()
    ext = population["EXT_SOURCE_2"]
    assert sum(ext["approved"]) == pytest.approx(1) and sum(ext["refused"]) == pytest.approx(1)
    assert ext["approved_median"] > ext["refused_median"]  # a higher score is safer

    app = run["applications"].iloc[5]
    looked_up = post(service, "applicant", {"client_id": int(app[KEY])}).json()
    sent = records(run["applications"].iloc[[5]])[0]
    assert {k: v for k, v in looked_up["features"].items() if v is not None} == sent
    unknown = post(service, "applicant", {"client_id": 1})
    assert unknown.status_code == 404 and unknown.json()["detail"][0]["loc"] == ["client_id"]


def request_total(metrics: str, path: str, status: int) -> float:
    """A Prometheus counter's value from the /metrics text; 0 when it has no line yet."""
    for line in metrics.splitlines():
        if (
            line.startswith("bentoml_service_request_total{")
            and f'endpoint="{path}"' in line
            and f'http_response_code="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_operators_get_health_and_metrics_and_no_access_log_by_default(service, run):
    for path in ("livez", "readyz", "healthz"):
        assert httpx.get(f"{service.url}/{path}").status_code == 200
    before = httpx.get(f"{service.url}/metrics").text
    good = post(service, "predict", {"features": records(run["applications"].head(1))[0]})
    bad = post(service, "predict", {"features": {"AMT_CREDITT": 1.0}})
    assert (good.status_code, bad.status_code) == (200, 400)
    after = httpx.get(f"{service.url}/metrics").text
    for status in (200, 400):
        grew = request_total(after, "/predict", status) - request_total(before, "/predict", status)
        assert grew >= 1, f"/predict {status} not counted"
    # BentoML's access log is off by default (the decision log has every scoring request).
    assert "path=/predict," not in service.log.read_text()


def audit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The auditor's command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "credit_scoring.serving.audit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def exported(db: Path, *options: str) -> list[dict]:
    done = audit("export", str(db), "--format", "jsonl", *options)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_decision_is_recorded_before_its_answer_and_replays_exactly(packaged, run, tmp_path):
    """200 decisions over predict, predict_batch and explain, from 16 connections and then two
    workers: each answer's record is committed by the time the answer arrives, the chain stays
    valid across processes, and the audit replays every one from its record alone."""
    db = tmp_path / "decisions.sqlite3"
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(db)}
    sample = run["applications"].head(50)
    bodies = [
        {"features": f, "client_id": int(i) if n % 2 else None}
        for n, (f, i) in enumerate(zip(records(sample), sample[KEY], strict=True))
    ]

    def answered_and_recorded(server: Server, endpoint: str, body: dict) -> dict:
        answer = post(server, endpoint, body).json()
        with sqlite3.connect(db) as conn:  # read the moment the answer is in: no waiting
            found = conn.execute(
                "SELECT COUNT(*) FROM records WHERE request_id = ?", (answer["request_id"],)
            ).fetchone()[0]
        assert found == len(answer.get("results", [answer]))
        return answer

    server = Server(env, tmp_path / "first.log").start()
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(lambda b: answered_and_recorded(server, "predict", b), bodies * 2)
            )
        answers.append(answered_and_recorded(server, "explain", bodies[1]))
    finally:
        server.stop()
    two = {**env, "CREDIT_SCORING_WORKERS": "2", "CREDIT_SCORING_ACCESS_LOG": "true"}
    again = Server(two, tmp_path / "second.log").start()
    try:
        batch = answered_and_recorded(again, "predict_batch", {"applicants": bodies[:49]})
        with ThreadPoolExecutor(16) as pool:
            more = list(pool.map(lambda b: post(again, "predict", b).json(), bodies + bodies[:40]))
    finally:
        again.stop()
    served_by = {
        line.split("[entry_service:credit_scoring:")[1].split("]")[0]
        for line in (tmp_path / "second.log").read_text().splitlines()
        if "path=/predict," in line and "status=200," in line
    }
    assert served_by == {"1", "2"}  # two processes appended to one chain

    logged = exported(db)
    assert len(logged) == len(answers) + 49 + len(more) == 240
    by_id = {(r["request_id"], r["item"]): r for r in logged}
    for body, answer in zip(bodies * 2, answers, strict=False):
        record = by_id[(answer["request_id"], 0)]
        assert record["input"] == body["features"] and record["client_id"] == body["client_id"]
        for key in ("probability", "score", "threshold", "cutoff_score", "risk_band"):
            assert record[key] == answer[key], key
        assert record["recommendation"] == answer["recommendation"]
        assert record["reasons"] == answer["reasons"]  # texts and codes
        assert record["package"]["version"] == answer["model_version"]
        assert (record["history"] is None) == (body["client_id"] is None)
    assert [r["item"] for r in logged if r["request_id"] == batch["request_id"]] == list(range(49))
    verified = audit("verify", str(db))
    assert verified.returncode == 0 and "240 records, chain valid" in verified.stderr
    replayed = audit("replay", str(db), env=packaged["env"])  # the package from the store
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    assert "240 decisions replayed, 0 differences" in replayed.stderr


def test_a_failed_write_is_a_503_and_no_decision_goes_unrecorded(packaged, run, tmp_path):
    """A full store (a quota standing in for a full disk) and a store locked by another
    process: each request gets its decision with its record, or a 503 and neither."""
    db = tmp_path / "decisions.sqlite3"
    env = {
        **packaged["env"],
        "CREDIT_SCORING_DECISION_LOG": str(db),
        "CREDIT_SCORING_RECORD_MAX_MB": "0.25",
        "CREDIT_SCORING_RECORD_TIMEOUT": "1",
    }
    body = {"features": records(run["applications"].head(1))[0]}
    server = Server(env, tmp_path / "server.log").start()
    try:
        answers = [post(server, "predict", body) for _ in range(200)]
        with sqlite3.connect(db, isolation_level=None) as lock:
            lock.execute("BEGIN EXCLUSIVE")  # another process holds the store
            locked = post(server, "predict", body)
            lock.execute("ROLLBACK")
    finally:
        server.stop()
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 503} and statuses[200] > 10, statuses
    assert locked.status_code == 503
    recorded = {r["request_id"] for r in exported(db)}
    for response in [*answers, locked]:
        out = response.json()
        if response.status_code == 200:
            assert out["request_id"] in recorded
        else:
            assert out["request_id"] not in recorded
            assert "probability" not in out and "decision" not in out
            assert out["error"].startswith("record: no decision: ")
            assert len(out["request_id"]) == 32
            assert response.headers["retry-after"] == "1"
    assert audit("verify", str(db)).returncode == 0


def test_simulations_are_recorded_but_never_decisions_and_an_officer_overrules(service, run):
    body = {"features": records(run["applications"].head(1))[0]}
    simulated = post(service, "predict", {**body, "simulation": True}).json()
    assert simulated["simulation"] is True
    refused = post(
        service,
        "decide",
        {
            "request_id": simulated["request_id"],
            "officer_id": "o-1",
            "decision": "approve",
            "reason": "OTHER",
        },
    )
    assert refused.status_code == 409 and "simulation" in refused.text

    real = post(service, "predict", body).json()
    assert real["simulation"] is False
    opposite = "approve" if real["recommendation"] == "refuse" else "refuse"
    final = post(
        service,
        "decide",
        {
            "request_id": real["request_id"],
            "officer_id": "officer-7",
            "decision": opposite,
            "reason": "VERIFIED_INCOME",
            "note": "payslips seen",
        },
    )
    assert final.status_code == 200, final.text
    out = final.json()
    assert out["refers_to"] == {"request_id": real["request_id"], "item": 0}
    assert out["recommendation"] == real["recommendation"]
    assert out["overridden"] is (real["recommendation"] != "refer")
    assert out["reason_text"].startswith("Income or employment verified")
    assert (out["officer_id"], out["note"]) == ("officer-7", "payslips seen")

    unknown = post(
        service,
        "decide",
        {
            "request_id": "0" * 32,
            "officer_id": "o",
            "decision": "approve",
            "reason": "OTHER",
        },
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["request_id"]
    bad_reason = post(
        service,
        "decide",
        {
            "request_id": real["request_id"],
            "officer_id": "o",
            "decision": "approve",
            "reason": "I FELT LIKE IT",
        },
    )
    assert bad_reason.status_code == 400 and "VERIFIED_INCOME" in bad_reason.text


def serve_and_expect_refusal(env: dict, log: Path) -> str:
    args = [str(Path(sys.executable).parent / "bentoml"), "serve", "service:CreditScoring"]
    done = subprocess.run(
        [*args, "--port", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_the_service_refuses_to_start_on_a_package_its_manifest_does_not_name(packaged, tmp_path):
    store = Path(packaged["env"]["BENTOML_HOME"])
    tag = packaged["manifest"]["tag"]
    source = store / "models" / tag.replace(":", "/")
    schema = json.loads((source / "feature_schema.json").read_text())
    schema["aggregates"] = schema["aggregates"][:-1]
    schema["features"] = schema["features"][:-1]
    env = {**packaged["env"], "BENTOML_HOME": str(tmp_path / "store")}
    script = (
        "import bentoml, shutil, sys, pathlib\n"
        "src = pathlib.Path(sys.argv[1])\n"
        "with bentoml.models.create(sys.argv[3]) as m:\n"
        "    for f in src.iterdir():\n"
        "        if f.name != 'model.yaml': shutil.copy(f, m.path)\n"
        "    pathlib.Path(m.path, 'feature_schema.json').write_text(sys.argv[2])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(source), json.dumps(schema), tag], env=env, check=True
    )
    # Under its own version, with one file changed: the manifest's hashes refuse it.
    out = serve_and_expect_refusal({**env, "CREDIT_SCORING_MODEL": tag}, tmp_path)
    assert "refuses to start" in out and "['feature_schema.json'] differ from manifest.json" in out
    assert "Traceback" not in out
    missing = serve_and_expect_refusal(
        {**env, "CREDIT_SCORING_MODEL": "credit_scoring:nope"}, tmp_path
    )
    assert "not in the BentoML model store" in missing
    assert "python -m credit_scoring.serving.store" in missing and "make serve" in missing


def test_the_service_refuses_to_start_on_a_record_it_cannot_write(packaged, tmp_path):
    (tmp_path / "a-file").write_text("")
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(tmp_path / "a-file" / "d.db")}
    out = serve_and_expect_refusal(env, tmp_path)
    assert "refuses to start: the decision record" in out and "is not a folder" in out
    assert "Traceback" not in out


def test_answers_have_the_declared_output_shapes(service, run):
    """The handlers serialise their answers themselves; they must match the OpenAPI models."""
    components = httpx.get(f"{service.url}/docs.json").json()["components"]["schemas"]

    def fields(name: str) -> set[str]:
        return set(components[name]["properties"])

    app = run["applications"].iloc[2]
    body = {"features": records(run["applications"].iloc[[2]])[0], "client_id": int(app[KEY])}
    assert set(post(service, "predict", body).json()) == fields("predict_response")
    explained = post(service, "explain", body).json()
    assert set(explained) == fields("explain_response")
    assert {k for c in explained["contributions"] for k in c} == fields("Contribution")
    batch = post(service, "predict_batch", {"applicants": [body, body]}).json()
    assert set(batch) == fields("predict_batch_response")
    assert all(set(r) == fields("Decision") for r in batch["results"])
