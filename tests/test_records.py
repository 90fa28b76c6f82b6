"""The decision record: the hash chain, tamper evidence, retention, quota, export, oversight."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from credit_scoring.serving.audit import export, oversight
from credit_scoring.serving.records import (
    GENESIS,
    RecordError,
    RecordLog,
    canonical,
    expire,
    final_record,
    months_before,
    read,
    verify,
)


def decision(i: int, *, kind: str = "decision", band: str = "C", when: str | None = None) -> dict:
    return {
        "kind": kind,
        "time": when or f"2026-11-01T00:00:{i % 60:02d}.{i:06d}+00:00",
        "request_id": f"{i:032x}",
        "item": 0,
        "model_version": "v1",
        "input": {"AMT_CREDIT": float(i)},
        "client_id": None,
        "probability": 0.05,
        "score": 600.0,
        "risk_band": band,
        "decision": "approve",
        "recommendation": "approve",
        "reasons": [],
    }


def write(path, records) -> None:
    log = RecordLog(path)
    try:
        log.submit(records).result(timeout=30)
    finally:
        log.close()


def test_each_row_chains_the_hash_of_the_one_before(tmp_path):
    db = tmp_path / "r.sqlite3"
    write(db, [decision(i) for i in range(3)])
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record, prev_hash, hash FROM records ORDER BY seq").fetchall()
    previous = GENESIS
    for body, prev, digest in rows:
        assert prev == previous
        assert digest == hashlib.sha256(prev.encode() + body.encode()).hexdigest()
        assert body.encode() == canonical(json.loads(body))  # sorted, compact: reproducible
        previous = digest
    assert verify(db).valid and verify(db).rows == 3


def test_concurrent_requests_share_group_commits_and_all_are_kept(tmp_path):
    db = tmp_path / "r.sqlite3"
    log = RecordLog(db)
    with ThreadPoolExecutor(16) as pool:
        pairs = [[decision(i), decision(i + 10_000)] for i in range(500)]
        futures = list(pool.map(log.submit, pairs))
    hashes = [f.result(timeout=30) for f in futures]
    log.close()
    assert all(len(h) == 2 for h in hashes)
    assert verify(db).rows == 1000 and verify(db).valid


def _worker(path: str, start: int) -> None:
    log = RecordLog(Path(path))
    futures = [log.submit([decision(i)]) for i in range(start, start + 200)]
    for future in futures:
        future.result(timeout=60)
    log.close()


def test_two_processes_writing_one_record_keep_one_valid_chain(tmp_path):
    db = tmp_path / "r.sqlite3"
    RecordLog(db).close()  # made once, as the service's first worker does
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(str(db), n * 1000)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    checked = verify(db)
    assert checked.rows == 400 and checked.valid, checked.problems


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (
            "UPDATE records SET record = replace(record, '\"probability\":0.05', "
            "'\"probability\":0.01') WHERE seq = 3",
            "row 3: its record does not match its hash: it was edited",
        ),
        (
            "UPDATE records SET risk_band = 'A' WHERE seq = 2",
            "row 2: a column disagrees with its record: it was edited",
        ),
        (
            "DELETE FROM records WHERE seq = 3",
            "row 4: follows",
        ),
    ],
)
def test_verify_finds_an_edited_or_deleted_row(tmp_path, tamper, found):
    db = tmp_path / "r.sqlite3"
    write(db, [decision(i) for i in range(5)])
    with sqlite3.connect(db) as conn:
        conn.execute(tamper)
    checked = verify(db)
    assert not checked.valid
    assert any(p.startswith(found) for p in checked.problems), checked.problems


def test_retention_removes_the_oldest_and_the_chain_still_verifies(tmp_path):
    db = tmp_path / "r.sqlite3"
    old = [decision(i, when=f"2023-0{1 + i}-15T00:00:00+00:00") for i in range(3)]
    new = [decision(i + 3, when=f"2026-0{1 + i}-15T00:00:00+00:00") for i in range(3)]
    write(db, old + new)
    removed = expire(db, months=25, moment=datetime(2026, 11, 29, tzinfo=UTC))
    assert removed == 3
    assert [r["time"][:7] for r in read(db)] == ["2026-01", "2026-02", "2026-03"]
    assert verify(db).valid
    write(db, [decision(99)])  # the chain continues after the anchor
    assert verify(db).valid and verify(db).rows == 4
    assert expire(db, months=25, moment=datetime(2026, 11, 29, tzinfo=UTC)) == 0


def test_months_before_counts_calendar_months():
    assert months_before(datetime(2026, 11, 29), 25) == datetime(2024, 10, 29)
    assert months_before(datetime(2026, 3, 31), 1) == datetime(2026, 2, 28)
    assert months_before(datetime(2024, 3, 31), 1) == datetime(2024, 2, 29)


def test_a_full_store_fails_the_commit_and_says_so(tmp_path):
    log = RecordLog(tmp_path / "r.sqlite3", max_bytes=64 * 1024)
    try:
        big = [dict(decision(i), input={f"F{j}": float(j) for j in range(200)}) for i in range(40)]
        with pytest.raises(RecordError, match="could not be recorded"):
            for start in range(0, 2000, 40):
                log.submit([dict(r, item=start + k) for k, r in enumerate(big)]).result(30)
    finally:
        log.close()
    assert verify(tmp_path / "r.sqlite3").valid  # what was committed is whole


def test_export_filters_and_oversight_counts_finals_not_simulations(tmp_path):
    db = tmp_path / "r.sqlite3"
    recs = [decision(i, band="A" if i < 3 else "F") for i in range(6)]
    recs[5]["recommendation"] = "refuse"
    sims = [decision(10 + i, kind="simulation", band="A") for i in range(4)]
    unseen = ["AMT_CREDIT: 9e+07 is above the largest value seen in training (4e+06)"]
    recs[1]["warnings"] = sims[0]["warnings"] = unseen  # a warned simulation never counts
    finals = [
        final_record(recs[5], request_id="f" * 32, officer_id="o1", decision="approve",
                     reason="VERIFIED_INCOME", reason_text="t", note="", time=recs[5]["time"]),
        final_record(recs[0], request_id="e" * 32, officer_id="o1", decision="approve",
                     reason="OTHER", reason_text="t", note="", time=recs[0]["time"]),
    ]  # fmt: skip
    write(db, recs + sims + finals)
    rows = oversight(read(db))
    assert rows == [
        {"risk_band": "A", "recommendations": 3, "warned": 1, "final_decisions": 1,
         "overrides": 0, "override_rate": 0.0},
        {"risk_band": "F", "recommendations": 3, "warned": 0, "final_decisions": 1,
         "overrides": 1, "override_rate": 1.0},
    ]  # fmt: skip
    out = tmp_path / "overridden.parquet"
    assert export(db, out, "parquet", overridden=True) == 1
    frame = pd.read_parquet(out)
    assert frame.loc[0, "officer_id"] == "o1" and bool(frame.loc[0, "overridden"])
    assert json.loads(frame.loc[0, "refers_to"])["request_id"] == recs[5]["request_id"]
    with (tmp_path / "sims.jsonl").open("w") as fh:
        assert export(db, fh, "jsonl", kinds=("simulation",)) == 4
    assert export(db, tmp_path / "all.csv", "csv", since="2026-11-01T00:00:03") > 0
