"""How long the batch path keeps another thread from running, stage by stage, in process.

    python -m benchmarks.loop_holds [--package models/package] [--applicants 2000] [--calls 5]

The service scores a batch in a worker thread while the event loop answers the probes; the loop
runs only when it gets the GIL. A thread here stands in for the loop: it sleeps a millisecond
again and again and records how late it wakes, while another thread runs what
``/predict_batch`` runs (parse the body with the request model, check and transform,
score and explain the refusals, build and commit the records, serialise the answer). The
longest waits, with the stage each began in, are what a probe would wait at worst, the HTTP
stack aside. A C call that keeps the GIL shows as one long wait; so does a loop of short calls
that each let it go and take it back at once (CPython's convoy effect), which is how a search
per applicant once kept the loop waiting 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
from pathlib import Path

import orjson

from benchmarks.serving import scorable_ids
from credit_scoring.serving.api import batch_request
from credit_scoring.serving.package import Package
from credit_scoring.serving.records import Provenance, RecordLog, decision_records, now
from credit_scoring.serving.scorer import Scorer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=Path, default=Path("models/package"))
    parser.add_argument("--applicants", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    package = Package.load(args.package)
    scorer = Scorer(package, threads=2)
    ids = scorable_ids(package)
    chosen = [ids[i % len(ids)] for i in range(args.applicants)]
    body = orjson.dumps(
        {"applicants": [{"features": scorer.application(c), "client_id": c} for c in chosen]}
    )
    model = batch_request(args.applicants)
    provenance = Provenance(package.version, package.files, package.reasons.version)
    marks: list[tuple[str, float]] = []

    def batch(log: RecordLog) -> None:
        for _ in range(args.calls):
            marks.append(("parse", time.perf_counter()))
            request = model.model_validate_json(body)
            applicants = [(a.features, a.client_id) for a in request.applicants]
            marks.append(("check and transform", time.perf_counter()))
            rows = scorer.rows(applicants, loc=("applicants",))
            marks.append(("score and explain", time.perf_counter()))
            decisions = scorer.decisions(rows, chosen)
            marks.append(("records", time.perf_counter()))
            records = decision_records(
                request_id="0" * 32,
                endpoint="predict_batch",
                simulation=False,
                applicants=applicants,
                decisions=decisions,
                provenance=provenance,
                time=now(),
            )
            log.commit(records)
            marks.append(("answer", time.perf_counter()))
            orjson.dumps({"results": decisions})
        marks.append(("done", time.perf_counter()))

    gc.freeze()  # as the service does once its package is loaded
    with tempfile.TemporaryDirectory() as folder:
        log = RecordLog(Path(folder) / "records.db")
        worker = threading.Thread(target=batch, args=(log,))
        worker.start()
        waits = []
        while worker.is_alive():
            asleep = time.perf_counter()
            time.sleep(0.001)
            waits.append((time.perf_counter() - asleep - 0.001, asleep))
        log.close()
    per_call = (marks[-1][1] - marks[0][1]) / args.calls
    print(f"{args.applicants} applicants, {args.calls} calls, {per_call * 1000:.0f} ms a call")
    print("longest waits of the sleeping thread, and the stage each began in:")
    for wait, began in sorted(waits, reverse=True)[:8]:
        stage = next((name for name, at in reversed(marks) if at <= began), "start")
        print(f"  {wait * 1000:6.1f} ms  {stage}")


if __name__ == "__main__":
    main()
