"""Unit tests of the service's parts: validation, plain-language names, versions, the log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydantic
import pytest

from credit_scoring.features.descriptions import describe
from credit_scoring.serving.api import explain_request
from credit_scoring.serving.decision_log import (
    HASH_PIECE,
    ROWS_PER_INSERT,
    DecisionLog,
    export,
    input_hash,
)
from credit_scoring.serving.package import package_version
from credit_scoring.serving.requests import Field, RequestSchema
from credit_scoring.serving.settings import Settings, SettingsError

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


def test_decision_log_keeps_every_concurrent_decision(tmp_path):
    db = tmp_path / "log.sqlite3"
    log = DecisionLog(db)
    decision = {
        "model_version": "v1",
        "threshold": 0.1,
        "probability": 0.2,
        "score": 527.5,
        "decision": "refuse",
        "risk_band": "high",
    }

    reasoned = {**decision, "reasons": [{"code": "A", "text": "a reason"}]}

    def one(i: int) -> None:
        log.append(f"r{i}", "predict", [({"AMT_CREDIT": i}, None)] * 2, [reasoned, decision])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(500)))
    log.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM decisions"
        ).fetchone() == (1000, 500)
        row = conn.execute(
            "SELECT input_hash, reasons, score FROM decisions WHERE request_id='r7' AND item=0"
        ).fetchone()
    assert row == (input_hash({"AMT_CREDIT": 7}, None), json.dumps(["A"]), 527.5)
    reopened = DecisionLog(db)  # a restart appends to what is there
    reopened.append("again", "explain", [({}, 5)], [decision])
    reopened.close()
    with (tmp_path / "out.jsonl").open("w") as out:
        assert export(db, "jsonl", out) == 1001
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1001


def test_input_hash_is_sha256_of_sorted_compact_json():
    features = {f"FIELD_{i:03d}": i * 1.5 for i in reversed(range(300))}
    canonical = json.dumps({"features": features, "client_id": 3}, sort_keys=True)
    compact = canonical.replace(", ", ",").replace(": ", ":").encode()
    assert len(compact) > 2 * HASH_PIECE  # hashed in pieces
    assert input_hash(features, 3) == hashlib.sha256(compact).hexdigest()
    assert input_hash(features, 3) != input_hash({**features, "FIELD_000": 1.0}, 3)


def test_decision_log_writes_a_batch_larger_than_one_insert(tmp_path):
    db = tmp_path / "log.sqlite3"
    log = DecisionLog(db)
    count = ROWS_PER_INSERT * 2 + 7
    decision = {
        "model_version": "v1",
        "threshold": 0.1,
        "probability": 0.05,
        "score": 572.4,
        "decision": "approve",
        "risk_band": "low",
    }
    log.append(
        "big", "predict_batch", [({"AMT_CREDIT": i}, i) for i in range(count)], [decision] * count
    )
    log.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT COUNT(*), MIN(item), MAX(item), SUM(client_id) FROM decisions"
        ).fetchone() == (
            count,
            0,
            count - 1,
            count * (count - 1) // 2,
        )


# The table as the first release created it, before decisions carried a score.
FIRST_RELEASE = """
CREATE TABLE decisions (
    request_id TEXT NOT NULL, item INTEGER NOT NULL, time TEXT NOT NULL,
    endpoint TEXT NOT NULL, model_version TEXT NOT NULL, threshold REAL NOT NULL,
    input_hash TEXT NOT NULL, client_id INTEGER, probability REAL NOT NULL,
    decision TEXT NOT NULL, risk_band TEXT NOT NULL, reasons TEXT NOT NULL,
    PRIMARY KEY (request_id, item)
)
"""


def test_a_log_from_before_the_score_gets_its_column_and_keeps_its_rows(tmp_path):
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.execute(FIRST_RELEASE)
        conn.execute(
            "INSERT INTO decisions VALUES "
            "('before', 0, '2024-01-01T00:00:00', 'predict', 'v0', 0.1, 'h', NULL, 0.2, "
            "'refuse', 'high', '[]')"
        )
    decision = {
        "model_version": "v1",
        "threshold": 0.1,
        "probability": 0.05,
        "score": 572.4,
        "decision": "approve",
        "risk_band": "low",
    }
    for i in range(2):  # a second start finds the column there
        log = DecisionLog(old)
        log.append(f"after{i}", "predict", [({}, None)], [decision])
        log.close()
    new = tmp_path / "new.sqlite3"
    DecisionLog(new).close()

    def columns(path: Path) -> list[tuple]:
        with sqlite3.connect(path) as conn:
            return [row[1:] for row in conn.execute("PRAGMA table_info(decisions)")]

    assert columns(old) == columns(new)  # a migrated log is a new one, column for column
    with sqlite3.connect(old) as conn:
        rows = conn.execute("SELECT request_id, score FROM decisions ORDER BY time").fetchall()
    assert rows == [("before", None), ("after0", 572.4), ("after1", 572.4)]
    with (tmp_path / "out.csv").open("w", newline="") as out:
        assert export(old, "csv", out) == 3


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
    }
    assert Settings.from_env(env) == Settings(
        model_tag="credit_scoring:0123abcd",
        decision_log=Path("/var/log/decisions.sqlite3"),
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
