"""The decision record: every scored application and every officer's decision, tamper-evident.

Regulation B keeps the application and the reasons for 25 months; the EU AI Act (Articles 12
and 14) asks for automatic records and for a person who can overrule the model. So each record
holds what rebuilds its decision from the record alone (the validated input, the client id, the
package version with its files' hashes and the history's, the calibrated probability, the score,
the threshold, the grade, the recommendation, the reasons as codes and texts, the request id and
the time), and the service sends no decision before its record is committed.

Records are rows of SQLite (WAL mode) in one table, appended only. Each row carries the SHA-256
of the row before it and its own: ``hash = sha256(prev_hash || record)``, where ``record`` is
the row's canonical JSON (sorted keys). :func:`verify` walks the chain and finds an edited,
inserted or deleted row. :func:`expire` removes the rows past the retention period, oldest first,
and keeps the hash of the last one removed as the chain's new anchor, so what remains still
verifies. The columns beside ``record`` are copies of some of its fields, for queries; verify
checks them too.

Three kinds of record: ``decision`` (a scored application), ``simulation`` (a what-if: kept, so
that nobody can dodge the record, but never counted as a decision) and ``final`` (an officer's
decision on a recommendation, linked to its request id, with ``overridden`` when it departs from
the model's recommendation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from credit_scoring.errors import InputError

log = logging.getLogger(__name__)

PAGE_SIZE = 32768
GENESIS = "0" * 64  # the previous hash of the first record ever written
KINDS = ("decision", "simulation", "final")
# The columns copied from a record for queries, besides seq, prev_hash, hash and record itself.
INDEXED = (
    "time",
    "kind",
    "request_id",
    "item",
    "model_version",
    "risk_band",
    "recommendation",
    "decision",
    "overridden",
)
CREATE = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT NOT NULL,
    item INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    risk_band TEXT,
    recommendation TEXT,
    decision TEXT NOT NULL,
    overridden INTEGER,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_request ON records (request_id, item);
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE TABLE IF NOT EXISTS anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    hash TEXT NOT NULL,
    removed INTEGER NOT NULL,
    removed_until TEXT
);
"""


class RecordError(InputError, RuntimeError):
    """A record could not be written or read; nothing may be decided without it."""


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record is hashed and stored as: compact JSON, sorted keys (orjson's)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def now() -> str:
    """The record's time: UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _indexed(record: Mapping[str, Any]) -> tuple[Any, ...]:
    values = [record.get(name) for name in INDEXED]
    values[INDEXED.index("overridden")] = (
        None if record.get("overridden") is None else int(record["overridden"])
    )
    return tuple(values)


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    # Several worker processes share the file: each waits up to `timeout` for the write lock.
    db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    # A record is some 5 KB; on SQLite's default 4 KB pages each would spill into overflow
    # pages, and a batch of 1,000 took twice as long to commit. The size holds for a new store
    # only (WAL fixes it once set).
    db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    db.execute("PRAGMA journal_mode=WAL")
    return db


def open_store(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection to the record store at ``path``, its tables made if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = _connect(path, timeout)
    db.executescript(CREATE)
    return db


def check_writable(path: Path) -> None:
    """Refuse a record store this process could not write (a read-only volume, a folder owned
    by another user) before any request comes: :class:`RecordError` naming the file.

    Creates nothing: SQLite needs to write the file and, for its journal, the folder it is in
    (or, for a new store, the nearest folder that exists, where the rest is made).
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists() and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
        raise RecordError(f"the decision record {path} cannot be written by this process")
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise RecordError(
            f"the decision record {path} cannot be written: {folder} is not a folder this "
            "process may write in"
        )


def append(db: sqlite3.Connection, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Append records in one transaction, chained after the last row; their hashes.

    ``BEGIN IMMEDIATE`` takes the write lock before the last hash is read, so writers in other
    processes chain one after another, never from the same parent.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        last = db.execute("SELECT hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        if last is None:
            anchor = db.execute("SELECT hash FROM anchor WHERE id = 1").fetchone()
            last = anchor or (GENESIS,)
        prev, rows = last[0], []
        for record in records:
            body = canonical(record)
            digest = chain_hash(prev, body)
            rows.append((*_indexed(record), body.decode("utf-8"), prev, digest))
            prev = digest
        columns = (*INDEXED, "record", "prev_hash", "hash")
        db.executemany(
            f"INSERT INTO records ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return [row[-1] for row in rows]


class RecordLog:
    """Commits records for the service, grouped: a request waits for at most one commit.

    :meth:`submit` queues a request's records and returns a future that the writer thread
    completes once they are committed (or fails, with the reason). The writer commits everything
    queued at that moment as one transaction, so under load many requests share a commit, and
    at rest a record is committed at once. ``max_bytes`` caps the store (SQLite's
    ``max_page_count``): past it a commit fails, as on a full disk, and the service answers 503.
    """

    _STOP = object()

    def __init__(self, path: Path, timeout: float = 5.0, max_bytes: int | None = None) -> None:
        self.path, self.timeout = path, timeout
        self._db = open_store(path, timeout)
        if max_bytes is not None:
            page = self._db.execute("PRAGMA page_size").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page)}")
        # WAL with synchronous=NORMAL: a committed record survives the process and the service
        # crashing; only a power cut can lose the last commits before a checkpoint. FULL adds an
        # fsync to every commit, which a request would wait for (docs/benchmarks.md).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="decision-record", daemon=True)
        self._writer.start()

    def submit(self, records: Sequence[Mapping[str, Any]]) -> concurrent.futures.Future:
        """Queue records for the next group commit; the future resolves to their hashes."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((list(records), future))
        return future

    def commit(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Submit and wait until committed, at most ``timeout`` s; else :class:`RecordError`."""
        try:
            return self.submit(records).result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise RecordError(self._late) from None

    async def commit_async(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """:meth:`commit` for an event loop: it awaits the writer rather than blocking on it."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.submit(records)), self.timeout)
        except TimeoutError:
            raise RecordError(self._late) from None

    @property
    def _late(self) -> str:
        return f"the record was not committed within {self.timeout:g} s"

    def _write(self) -> None:
        stopping = False
        while not stopping:
            jobs = [self._queue.get()]
            while not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            stopping = any(job is self._STOP for job in jobs)
            jobs = [job for job in jobs if job is not self._STOP]
            if not jobs:
                continue
            try:
                hashes = append(self._db, [r for records, _ in jobs for r in records])
            except Exception as err:  # every waiting request learns it: none gets a decision
                log.error(
                    "decision record %s: %d request(s) not recorded: %s", self.path, len(jobs), err
                )
                for _, future in jobs:
                    future.set_exception(RecordError(f"the decision could not be recorded: {err}"))
                continue
            at = 0
            for records, future in jobs:
                future.set_result(hashes[at : at + len(records)])
                at += len(records)
        self._db.close()

    def find(self, request_id: str, item: int) -> dict[str, Any] | None:
        """The committed record of one scored application (decision or simulation), or None."""
        with _reader(self.path) as db:
            row = db.execute(
                "SELECT record FROM records WHERE request_id = ? AND item = ? AND kind != 'final'",
                (request_id, item),
            ).fetchone()
        return None if row is None else orjson.loads(row[0])

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        self._queue.put(self._STOP)
        self._writer.join()


class _reader:
    """A read-only connection as a context manager (closed on exit, unlike sqlite3's)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise RecordError(f"{path}: no such decision record")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *_: object) -> None:
        self.db.close()


def read(
    path: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: Sequence[str] = KINDS,
) -> Iterator[dict[str, Any]]:
    """The records in chain order, each with its ``seq`` and ``hash``, filtered by time and kind.

    ``since`` and ``until`` are ISO 8601 times (or dates); ``until`` is exclusive.
    """
    clauses, args = [f"kind IN ({', '.join('?' * len(kinds))})"], list(kinds)
    if since:
        clauses.append("time >= ?")
        args.append(since)
    if until:
        clauses.append("time < ?")
        args.append(until)
    with _reader(path) as db:
        query = f"SELECT seq, hash, record FROM records WHERE {' AND '.join(clauses)} ORDER BY seq"
        for seq, digest, body in db.execute(query, args):
            yield {"seq": seq, "hash": digest, **orjson.loads(body)}


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: the rows checked and the problems, one line each."""

    rows: int
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


def verify(path: Path) -> Verification:
    """Walk the chain from its anchor; name every row that was edited, inserted or deleted."""
    problems, rows = [], 0
    with _reader(path) as db:
        anchor = db.execute("SELECT hash FROM anchor WHERE id = 1").fetchone()
        expected = anchor[0] if anchor else GENESIS
        columns = ("seq", *INDEXED, "record", "prev_hash", "hash")
        for row in db.execute(f"SELECT {', '.join(columns)} FROM records ORDER BY seq"):
            rows += 1
            seq, *indexed, body, prev, digest = row
            if prev != expected:
                problems.append(
                    f"row {seq}: follows {prev[:12]}, but the row before it is {expected[:12]}: "
                    "a row was deleted or inserted before it"
                )
            if chain_hash(prev, body.encode("utf-8")) != digest:
                problems.append(f"row {seq}: its record does not match its hash: it was edited")
            elif tuple(indexed) != _indexed(orjson.loads(body)):
                problems.append(f"row {seq}: a column disagrees with its record: it was edited")
            expected = digest
    return Verification(rows, tuple(problems))


def months_before(moment: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))


def expire(path: Path, months: int, moment: datetime | None = None) -> int:
    """Remove the records older than ``months`` (the retention period); the number removed.

    Only the oldest rows go, up to the first that is still within the period, so the chain
    stays whole; the last removed row's hash becomes the anchor that :func:`verify` starts from.
    """
    cutoff = months_before(moment or datetime.now(UTC), months).isoformat(timespec="microseconds")
    db = _connect(path, 30)
    try:
        db.execute("BEGIN IMMEDIATE")
        first_kept = db.execute(
            "SELECT MIN(seq) FROM records WHERE time >= ?", (cutoff,)
        ).fetchone()[0]
        bound = "seq < ?" if first_kept is not None else "1"
        args = (first_kept,) if first_kept is not None else ()
        last = db.execute(
            f"SELECT seq, hash, time FROM records WHERE {bound} ORDER BY seq DESC LIMIT 1", args
        ).fetchone()
        if last is None:
            db.execute("ROLLBACK")
            return 0
        removed = db.execute(f"DELETE FROM records WHERE {bound}", args).rowcount
        before = db.execute("SELECT removed FROM anchor WHERE id = 1").fetchone()
        db.execute(
            "INSERT OR REPLACE INTO anchor (id, hash, removed, removed_until) VALUES (1, ?, ?, ?)",
            (last[1], (before[0] if before else 0) + removed, last[2]),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.close()
    return removed


@dataclass(frozen=True)
class Provenance:
    """What a decision was made with: the package's version and files, its reason codes."""

    version: str
    files: Mapping[str, str]
    reason_codes: int
    history_file: str = "known_history.npy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "files": dict(self.files),
            "reason_codes": self.reason_codes,
        }


def decision_records(
    *,
    request_id: str,
    endpoint: str,
    simulation: bool,
    applicants: Sequence[tuple[Mapping[str, Any], int | None]],
    decisions: Sequence[Mapping[str, Any]],
    provenance: Provenance,
    time: str,
) -> list[dict[str, Any]]:
    """The records of one request's scored applications: what replays each decision.

    The validated input as sent, the client id and the hash of the history looked up for it
    (None without one), the package, and the decision as answered, reasons included.
    """
    package = provenance.to_dict()
    return [
        {
            "kind": "simulation" if simulation else "decision",
            "time": time,
            "request_id": request_id,
            "item": i,
            "endpoint": endpoint,
            "input": dict(features),
            "client_id": client_id,
            "history": None if client_id is None else provenance.files[provenance.history_file],
            "package": package,
            **{key: d[key] for key in DECIDED},
            "warnings": list(d.get("warnings", ())),
        }
        for i, ((features, client_id), d) in enumerate(zip(applicants, decisions, strict=True))
    ]


# What a decision answers and its record keeps, beside the input: replay compares these.
DECIDED = (
    "model_version",
    "probability",
    "score",
    "threshold",
    "cutoff_score",
    "risk_band",
    "decision",
    "recommendation",
    "reasons",
)


def final_record(
    recommended: Mapping[str, Any],
    *,
    request_id: str,
    officer_id: str,
    decision: str,
    reason: str,
    reason_text: str,
    note: str,
    time: str,
) -> dict[str, Any]:
    """An officer's final decision on a recorded recommendation, beside the model's.

    ``overridden`` when the officer departs from the model's recommendation; deciding a
    referral either way is not an override, since the model left that decision to a person.
    """
    recommendation = recommended["recommendation"]
    return {
        "kind": "final",
        "time": time,
        "request_id": request_id,
        "item": 0,
        "refers_to": {"request_id": recommended["request_id"], "item": recommended["item"]},
        "officer_id": officer_id,
        "decision": decision,
        "reason": reason,
        "reason_text": reason_text,
        "note": note,
        "recommendation": recommendation,
        "overridden": recommendation != "refer" and decision != recommendation,
        "model_version": recommended["model_version"],
        "risk_band": recommended["risk_band"],
        "probability": recommended["probability"],
        "score": recommended["score"],
    }
