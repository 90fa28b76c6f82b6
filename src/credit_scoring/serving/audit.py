"""What an auditor does with the decision record: verify, replay, export, expire, oversee.

    python -m credit_scoring.serving.audit verify decisions.sqlite3
    python -m credit_scoring.serving.audit replay decisions.sqlite3 --since 2026-11-01
    python -m credit_scoring.serving.audit export decisions.sqlite3 --format csv --out x.csv
    python -m credit_scoring.serving.audit expire decisions.sqlite3 [--months 25]
    python -m credit_scoring.serving.audit oversight decisions.sqlite3

``replay`` scores each recorded application again from its record alone, with the package the
record names (a ``--package`` folder, else the BentoML model store), and reports any difference
from what was answered. Exit codes: 0 as recorded (or nothing to report), 1 bad input, 2 a
difference, an invalid chain, or a decision that cannot be replayed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from credit_scoring.errors import InputError, exit_on_input_error
from credit_scoring.serving.package import Manifest, Package, PackageError
from credit_scoring.serving.records import (
    DECIDED,
    KINDS,
    RecordError,
    expire,
    read,
    verify,
)
from credit_scoring.serving.scorer import Scorer
from credit_scoring.serving.settings import Settings

log = logging.getLogger("credit_scoring.serving.audit")
DIFFERENT = 2  # the exit code of a replay that differs, or a chain that does not verify
TOLERANCE = 1e-12  # on the probability; the score and contributions follow it


@dataclass
class Replay:
    """What a replay found: how many decisions it rebuilt, and each difference in one line."""

    replayed: int = 0
    differences: list[str] = field(default_factory=list)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _same_reasons(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """The same reasons: codes, features and texts equal, contributions within tolerance."""
    words = [[(r["code"], r["feature"], r["text"]) for r in side] for side in (a, b)]
    return words[0] == words[1] and all(
        _close(x["contribution"], y["contribution"]) for x, y in zip(a, b, strict=True)
    )


def compare(recorded: Mapping[str, Any], replayed: Mapping[str, Any]) -> list[str]:
    """The fields of a decision that differ between its record and its replay."""
    found = []
    for key in DECIDED:
        a, b = recorded[key], replayed[key]
        if key == "reasons":
            same = _same_reasons(a, b)
        elif isinstance(a, float) and isinstance(b, float):
            same = _close(a, b)
        else:
            same = a == b
        if not same:
            found.append(f"{key}: recorded {a!r}, replayed {b!r}")
    return found


class Packages:
    """The packages a replay needs, by version: the folders given, else the model store."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self._folders = {Manifest.read(f).version: f for f in folders}
        self._loaded: dict[str, Scorer] = {}

    def scorer(self, version: str) -> Scorer:
        if version not in self._loaded:
            self._loaded[version] = Scorer(Package.load(self._folder(version), version=version))
        return self._loaded[version]

    def _folder(self, version: str) -> Path:
        if version in self._folders:
            return self._folders[version]
        import bentoml  # the store only when no folder has the version: it is slow to import

        for model in bentoml.models.list():
            if model.tag.version == version:
                return Path(model.path)
        raise PackageError(
            f"package version {version} is neither in a --package folder nor in the BentoML "
            "model store; `dvc pull` at the commit that built it, or pass its folder"
        )


def replay(path: Path, packages: Packages, since: str | None, until: str | None) -> Replay:
    """Score every recorded application (decisions and simulations) again from its record."""
    result = Replay()
    for record in read(path, since=since, until=until, kinds=("decision", "simulation")):
        where = f"{record['request_id']}/{record['item']} ({record['time']})"
        scorer = packages.scorer(record["package"]["version"])
        if dict(scorer.package.files) != record["package"]["files"]:
            result.differences.append(f"{where}: the package's files differ from the record's")
            continue
        client = record["client_id"]
        history = scorer.package.files["known_history.npy"] if client is not None else None
        if history != record["history"]:
            result.differences.append(f"{where}: the history differs from the record's")
            continue
        rows = scorer.rows([(record["input"], client)])
        again = scorer.decisions(rows, [client])[0]
        result.differences += [f"{where}: {d}" for d in compare(record, again)]
        result.replayed += 1
    return result


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as one flat row: scalars as they are, nested values as JSON text."""
    return {
        key: json.dumps(value) if isinstance(value, dict | list) else value
        for key, value in record.items()
    }


def export(
    path: Path,
    out: Path | TextIO,
    fmt: str,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: Sequence[str] = KINDS,
    decision: str | None = None,
    overridden: bool | None = None,
) -> int:
    """Write the records as CSV, JSON lines or parquet, filtered; the number written.

    ``decision`` keeps the records whose decision (the model's, or the officer's for a final
    decision) is that one; ``overridden`` keeps the final decisions that did (or did not)
    overrule the model.
    """
    chosen = [
        r
        for r in read(path, since=since, until=until, kinds=kinds)
        if (decision is None or r["decision"] == decision)
        and (overridden is None or r.get("overridden") is overridden)
    ]
    rows = [flat(r) for r in chosen]
    if fmt == "jsonl":
        _write(out, "".join(json.dumps(r) + "\n" for r in chosen))
    elif fmt == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
        _write(out, text.getvalue())
    else:
        _write_parquet(rows, out)
    return len(chosen)


def _write_parquet(rows: list[dict[str, Any]], out: Path | TextIO) -> None:
    """Parquet through pyarrow, which the development environment has and the serving image
    does not (it exports CSV and JSON lines)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "--format parquet needs pyarrow, which this environment lacks; "
            "use --format csv or jsonl"
        ) from None
    pq.write_table(pa.Table.from_pylist(rows), out)


def _write(out: Path | TextIO, text: str) -> None:
    if isinstance(out, Path):
        out.write_text(text, encoding="utf-8")
    else:
        out.write(text)


def oversight(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """By risk grade: recommendations, those made on inputs outside what the model saw in
    training (``warned``), final decisions, overrides and the override rate.

    Simulations never count. The override rate is the share of final decisions that overruled
    the model's recommendation.
    """
    recommended, warned, finals, overrides = Counter(), Counter(), Counter(), Counter()
    for r in records:
        if r["kind"] == "decision":
            recommended[r["risk_band"]] += 1
            warned[r["risk_band"]] += bool(r.get("warnings"))
        elif r["kind"] == "final":
            finals[r["risk_band"]] += 1
            overrides[r["risk_band"]] += bool(r["overridden"])
    return [
        {
            "risk_band": band,
            "recommendations": recommended[band],
            "warned": warned[band],
            "final_decisions": finals[band],
            "overrides": overrides[band],
            "override_rate": overrides[band] / finals[band] if finals[band] else None,
        }
        for band in sorted(set(recommended) | set(finals))
    ]


def _commands() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m credit_scoring.serving.audit")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("verify", "check the hash chain: every edited, inserted or deleted row"),
        ("replay", "score recorded applications again and report any difference"),
        ("export", "write records as CSV, JSON lines or parquet"),
        ("expire", "remove the records past the retention period"),
        ("oversight", "override rate, and decisions on unseen inputs, by risk grade"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("db", type=Path, help="the record (CREDIT_SCORING_DECISION_LOG)")
        if name in ("replay", "export"):
            command.add_argument("--since", help="ISO time or date, inclusive")
            command.add_argument("--until", help="ISO time or date, exclusive")
    replay_cmd, export_cmd, expire_cmd = (sub.choices[n] for n in ("replay", "export", "expire"))
    replay_cmd.add_argument("--package", type=Path, action="append", default=[])
    export_cmd.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="jsonl")
    export_cmd.add_argument("--out", type=Path, help="a file (standard output for csv, jsonl)")
    export_cmd.add_argument("--kind", choices=KINDS, action="append")
    export_cmd.add_argument("--decision", choices=("approve", "refuse"))
    export_cmd.add_argument("--overridden", choices=("yes", "no"))
    expire_cmd.add_argument(
        "--months", type=int, help="retention; default CREDIT_SCORING_RETENTION_MONTHS, else 25"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one command; its exit code."""
    if not args.db.exists():
        raise RecordError(f"{args.db}: no such decision record")
    if args.command == "verify":
        checked = verify(args.db)
        for problem in checked.problems:
            log.error("%s", problem)
        log.info("%d records, chain %s", checked.rows, "valid" if checked.valid else "BROKEN")
        return 0 if checked.valid else DIFFERENT
    if args.command == "replay":
        result = replay(args.db, Packages(args.package), args.since, args.until)
        for difference in result.differences:
            log.error("%s", difference)
        log.info("%d decisions replayed, %d differences", result.replayed, len(result.differences))
        return DIFFERENT if result.differences else 0
    if args.command == "export":
        if args.format == "parquet" and args.out is None:
            raise RecordError("--format parquet needs --out")
        count = export(
            args.db,
            args.out or sys.stdout,
            args.format,
            since=args.since,
            until=args.until,
            kinds=args.kind or KINDS,
            decision=args.decision,
            overridden=None if args.overridden is None else args.overridden == "yes",
        )
        log.info("%d records written", count)
        return 0
    if args.command == "expire":
        months = args.months or Settings.from_env(os.environ).retention_months
        removed = expire(args.db, months)
        log.info("%d records removed (older than %d months)", removed, months)
        return 0
    for row in oversight(read(args.db)):
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, exit: Callable[[int], Any] = sys.exit) -> None:
    args = _commands().parse_args(argv)
    exit(exit_on_input_error(lambda: run(args), log))


if __name__ == "__main__":
    main()
