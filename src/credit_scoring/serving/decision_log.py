"""The decision log: every credit decision the service returns, kept for record keeping.

Adverse-action notices and the EU AI Act ask that each decision can be traced to its input,
model and reasons. The service hands decisions to :class:`DecisionLog`, whose one writer thread
appends them to SQLite (WAL mode): the response never waits on the disk, concurrent requests
never interleave writes, and every committed row survives a restart. A closed log has flushed
everything it was given. ``python -m credit_scoring.serving.decision_log`` exports it.

The table is created when missing, and a column added since is added to a table made before
it (:data:`ADDED`), nullable, so an old log keeps its rows and takes new ones: the score in
points is NULL for decisions logged before the service gave it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import orjson

log = logging.getLogger(__name__)

CREATE = """
CREATE TABLE IF NOT EXISTS decisions (
    request_id TEXT NOT NULL,
    item INTEGER NOT NULL,
    time TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model_version TEXT NOT NULL,
    threshold REAL NOT NULL,
    input_hash TEXT NOT NULL,
    client_id INTEGER,
    probability REAL NOT NULL,
    decision TEXT NOT NULL,
    risk_band TEXT NOT NULL,
    reasons TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (request_id, item)
)
"""
# Columns added after the first release, with their types: a log created before gets them, at
# the end as in CREATE, so a new table and a migrated one have the same columns in one order.
ADDED = {"score": "REAL"}


class Entry(NamedTuple):
    """One logged decision. ``reasons`` are the reason codes (JSON), empty unless refused;
    ``score`` the score in points.

    A tuple, so the writer hands it to SQLite as it is.
    """

    request_id: str
    item: int
    time: str
    endpoint: str
    model_version: str
    threshold: float
    input_hash: str
    client_id: int | None
    probability: float
    decision: str
    risk_band: str
    reasons: str
    score: float


COLUMNS = Entry._fields
# SQLite binds at most 32,766 values a statement.
ROWS_PER_INSERT = 32766 // len(COLUMNS)


def insert_statement(rows: int) -> str:
    """One INSERT of ``rows`` rows.

    Python's sqlite3 lets go of the interpreter lock around every step of a statement; one
    statement a batch rather than one a row keeps the writer from taking it back once a row.
    """
    row = f"({', '.join('?' * len(COLUMNS))})"
    return f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES {', '.join([row] * rows)}"


# hashlib lets go of the interpreter lock for 2,048 bytes or more, and the writer would then
# wait for it back from the request path once a decision; pieces below that keep it.
HASH_PIECE = 2047


def input_hash(features: Mapping[str, Any], client_id: int | None) -> str:
    """SHA-256 of the request's input as compact JSON with sorted keys (orjson's, UTF-8).

    The same input gives the same hash whatever the order or spacing the client sent it in.
    """
    canonical = memoryview(
        orjson.dumps({"client_id": client_id, "features": features}, option=orjson.OPT_SORT_KEYS)
    )
    digest = hashlib.sha256()
    for start in range(0, len(canonical), HASH_PIECE):
        digest.update(canonical[start : start + HASH_PIECE])
    return digest.hexdigest()


class DecisionLog:
    """Appends decisions from any thread; one background thread writes them in order.

    After the first decision of a batch the writer sleeps ``linger`` seconds, then writes all
    that arrived as one transaction. No append wakes it mid-batch, so under load it takes the
    interpreter lock from the request path twenty times a second rather than once a request
    (waking per append cost about a sixth of the service's throughput in a benchmark run); at
    rest a decision is on disk within ``linger``.
    """

    _STOP = object()

    def __init__(self, path: Path, linger: float = 0.05) -> None:
        self.path, self.linger = path, linger
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(CREATE)
            migrate(db)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="decision-log", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        # Several worker processes may share the file: wait for its lock rather than fail.
        return sqlite3.connect(self.path, timeout=30, check_same_thread=False)

    def append(
        self,
        request_id: str,
        endpoint: str,
        inputs: Sequence[tuple[Mapping[str, Any], int | None]],
        decisions: Sequence[Mapping[str, Any]],
    ) -> None:
        """Queue the decisions of one request; hashing and writing happen off the caller's path.

        A refusal's reason codes are its decision's ``reasons``.
        """
        self._queue.put((request_id, endpoint, time.time(), inputs, decisions))

    def _entries(self, job: tuple) -> Iterator[Entry]:
        request_id, endpoint, when, inputs, decisions = job
        stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
        for i, ((features, client_id), d) in enumerate(zip(inputs, decisions, strict=True)):
            codes = json.dumps([r["code"] for r in d.get("reasons", ())])
            yield Entry(
                request_id=request_id,
                item=i,
                time=stamp,
                endpoint=endpoint,
                model_version=d["model_version"],
                threshold=d["threshold"],
                input_hash=input_hash(features, client_id),
                client_id=client_id,
                probability=d["probability"],
                decision=d["decision"],
                risk_band=d["risk_band"],
                reasons=codes,
                score=d["score"],
            )

    def _write(self) -> None:
        db = self._connect()
        db.execute("PRAGMA synchronous=NORMAL")
        stopping = False
        while not stopping:
            jobs = [self._queue.get()]
            if jobs[0] is not self._STOP:
                time.sleep(self.linger)
            while not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            stopping = any(job is self._STOP for job in jobs)
            try:
                rows = [row for job in jobs if job is not self._STOP for row in self._entries(job)]
                with db:
                    for start in range(0, len(rows), ROWS_PER_INSERT):
                        chunk = rows[start : start + ROWS_PER_INSERT]
                        db.execute(insert_statement(len(chunk)), [v for row in chunk for v in row])
            except Exception:  # the writer must outlive one bad batch, and say what it lost
                log.exception(
                    "decision log %s: could not write %d request(s)", self.path, len(jobs)
                )
        db.close()

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._queue.put(self._STOP)
        self._writer.join()


def migrate(db: sqlite3.Connection) -> None:
    """Add to a log made by an earlier version the columns added since (:data:`ADDED`).

    Under the write lock, so that workers starting together on one old file add each column
    once: the second finds it there.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
        for name, kind in ADDED.items():
            if name not in present:
                db.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
                log.info("decision log: added the column %s (NULL for earlier decisions)", name)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every logged decision, oldest first."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        for row in db.execute("SELECT * FROM decisions ORDER BY time, request_id, item"):
            yield dict(row)


def export(path: Path, fmt: str, out: TextIO) -> int:
    """Write the log as CSV or JSON lines; returns the number of decisions written."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for row in read(path):
        if writer:
            writer.writerow(row)
        else:
            out.write(json.dumps(row) + "\n")
        count += 1
    return count


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export the service's decision log.")
    parser.add_argument("db", type=Path, help="the SQLite file (CREDIT_SCORING_DECISION_LOG)")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    parser.add_argument("--out", type=Path, help="a file to write; standard output if absent")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.exit(1, f"{args.db}: no such decision log\n")
    if args.out:
        with args.out.open("w", encoding="utf-8", newline="") as out:
            count = export(args.db, args.format, out)
        sys.stderr.write(f"{count} decisions written to {args.out}\n")
    else:
        export(args.db, args.format, sys.stdout)


if __name__ == "__main__":
    main()
