"""The service's settings as values, parsed from a mapping so that reading them is a pure step.

``service.py`` passes ``os.environ`` once, as it starts; a test passes a dict. An unset or empty
variable takes its default; a value the service cannot use is a :class:`SettingsError` naming
the variable, so that ``bentoml serve`` stops with that one line instead of a traceback.

    CREDIT_SCORING_MODEL         model tag in the store (default ``credit_scoring:latest``)
    CREDIT_SCORING_DECISION_LOG  SQLite file of the decision record (default ``decisions.sqlite3``;
                                 in the service's image, ``/home/bentoml/decisions/
                                 decisions.sqlite3``, the folder a volume is mounted on)
    CREDIT_SCORING_RECORD_TIMEOUT  seconds a request waits for its record to be committed, else
                                 HTTP 503 and no decision (default 5)
    CREDIT_SCORING_RECORD_MAX_MB  a quota on the record store: past it, commits fail as on a full
                                 disk and requests get 503 (default none)
    CREDIT_SCORING_RETENTION_MONTHS  how long records are kept (default 25, Regulation B); the
                                 expire command removes older ones
    CREDIT_SCORING_MAX_BATCH     most applicants in one predict_batch call (default 2000)
    CREDIT_SCORING_MAX_BODY_MB   largest request body in MiB, else HTTP 413 (default 16)
    CREDIT_SCORING_WORKERS       worker processes (default 1)
    CREDIT_SCORING_THREADS       threads each worker scores a batch on (default: the machine's
                                 cores shared among the workers)
    CREDIT_SCORING_API_KEY       a key every request must send in the X-API-Key header, except
                                 the probes and metrics (default none: no key asked)
    CREDIT_SCORING_API_KEY_FILE  a file holding that key (a mounted secret), instead of the
                                 variable
    CREDIT_SCORING_ACCESS_LOG    BentoML's per-request access log, ``true``/``false`` (default
                                 false: it costs a few percent of the throughput, up to 15% on a
                                 quiet machine; every scoring request is in the decision log, and
                                 the proxy in front usually keeps an access log)
    CREDIT_SCORING_METRICS       Prometheus metrics at /metrics (default true)
    CREDIT_SCORING_TRACE_RATE    share of requests traced by OpenTelemetry (default 0: tracing
                                 off, and BentoML's tracing middleware skips every path)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from credit_scoring.errors import InputError

T = TypeVar("T")
MIB = 2**20
# BentoML's tag: a name and an optional version, each of at most 63 letters, digits, "-", "_"
# or "." that starts and ends with a letter or digit (BentoML lowercases it).
_TAG_PART = r"[a-z0-9](?:[-._a-z0-9]{0,61}[a-z0-9])?"
_TAG = re.compile(f"{_TAG_PART}(?::{_TAG_PART})?", re.IGNORECASE)
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
# Where BentoML's image (which sets BENTOML_CONTAINERIZED=true) keeps the record: its folder is
# made for the image's user, and `make container-run` mounts the records volume on it.
CONTAINER_RECORD = Path("/home/bentoml/decisions/decisions.sqlite3")


class SettingsError(InputError, ValueError):
    """A setting's value cannot be used; the message names the variable and what it takes."""


@dataclass(frozen=True)
class Settings:
    """What the service serves, where it logs, its limits, and what it reports to operators."""

    model_tag: str = "credit_scoring:latest"
    decision_log: Path = Path("decisions.sqlite3")
    record_timeout: float = 5.0
    record_max_bytes: int | None = None
    retention_months: int = 25
    max_batch: int = 2000
    max_body_bytes: int = 16 * MIB
    workers: int = 1
    threads: int | None = None
    api_key: str | None = field(default=None, repr=False)
    access_log: bool = False
    metrics: bool = True
    trace_rate: float = 0.0

    def batch_threads(self, cores: int) -> int:
        """Threads per worker for a batch: the setting, else ``cores`` shared among workers."""
        return self.threads or max(1, cores // self.workers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """The settings from environment variables; raises :class:`SettingsError` on a bad one."""

        def raw(name: str) -> str:
            return environ.get(f"CREDIT_SCORING_{name}", "").strip()

        def read(name: str, parse: Callable[[str], T | None], expected: str, default: T) -> T:
            text = raw(name)
            if not text:
                return default
            try:
                value = parse(text)
            except ValueError:
                value = None
            if value is None:
                raise SettingsError(f"CREDIT_SCORING_{name}={text!r}: {expected}")
            return value

        count = "expected a whole number of at least 1"
        flag = "use true or false"
        return cls(
            model_tag=read("MODEL", _tag, "expected a BentoML tag, name[:version]", cls.model_tag),
            decision_log=Path(
                raw("DECISION_LOG")
                or (CONTAINER_RECORD if _flag(environ.get("BENTOML_CONTAINERIZED", "")) else None)
                or cls.decision_log
            ),
            record_timeout=read(
                "RECORD_TIMEOUT", _seconds, "expected a positive number of seconds", 5.0
            ),
            record_max_bytes=read(
                "RECORD_MAX_MB", _mib, "expected a positive number of MiB", cls.record_max_bytes
            ),
            retention_months=read("RETENTION_MONTHS", _count, count, cls.retention_months),
            max_batch=read("MAX_BATCH", _count, count, cls.max_batch),
            max_body_bytes=read(
                "MAX_BODY_MB", _mib, "expected a positive number of MiB", cls.max_body_bytes
            ),
            workers=read("WORKERS", _count, count, cls.workers),
            threads=read("THREADS", _count, count, cls.threads),
            api_key=api_key(environ),
            access_log=read("ACCESS_LOG", _flag, flag, cls.access_log),
            metrics=read("METRICS", _flag, flag, cls.metrics),
            trace_rate=read("TRACE_RATE", _share, "expected a share from 0 to 1", cls.trace_rate),
        )


MIN_KEY = 16  # characters: a shorter key is guessed too easily


def api_key(environ: Mapping[str, str]) -> str | None:
    """The API key from CREDIT_SCORING_API_KEY or the file CREDIT_SCORING_API_KEY_FILE names,
    checked; None when neither is set. The screen reads it the same way, to send it."""
    value = environ.get("CREDIT_SCORING_API_KEY", "").strip()
    file = environ.get("CREDIT_SCORING_API_KEY_FILE", "").strip()
    if value and file:
        raise SettingsError(
            "CREDIT_SCORING_API_KEY and CREDIT_SCORING_API_KEY_FILE are both set: use one"
        )
    name = "CREDIT_SCORING_API_KEY"
    if file:
        name = f"CREDIT_SCORING_API_KEY_FILE={file!r}"
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise SettingsError(f"{name}: cannot read the key: {err}") from None
    if not value and not file:
        return None
    if len(value) < MIN_KEY or not value.isprintable() or not value.isascii():
        raise SettingsError(
            f"{name}: expected a key of at least {MIN_KEY} printable ASCII characters"
        )
    return value


def _tag(raw: str) -> str | None:
    return raw if _TAG.fullmatch(raw) else None


def _count(raw: str) -> int | None:
    value = int(raw)
    return value if value >= 1 else None


def _mib(raw: str) -> int | None:
    """Bytes from MiB: a finite size of at least one byte."""
    value = float(raw)
    return int(value * MIB) if math.isfinite(value) and value * MIB >= 1 else None


def _seconds(raw: str) -> float | None:
    value = float(raw)
    return value if math.isfinite(value) and value > 0 else None


def _flag(raw: str) -> bool | None:
    return _FLAGS.get(raw.lower())


def _share(raw: str) -> float | None:
    value = float(raw)
    return value if 0.0 <= value <= 1.0 else None
