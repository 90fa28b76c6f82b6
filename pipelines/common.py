"""What every stage entry point shares: its parameters, logging, and a clean exit on bad input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from credit_scoring.errors import InputError, exit_on_input_error

log = logging.getLogger("pipelines")

Params = dict[str, Any]


def load_params(path: Path = Path("params.yaml")) -> Params:
    """The composed parameters every stage reads (``make params`` writes them from conf/)."""
    if not path.is_file():
        raise InputError(f"{path} not found; stages run from the repository's root")
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def require(path: Path | str) -> Path:
    """A stage input that must exist; a missing one is one clear line, not a traceback."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found; run the stage that writes it (`dvc repro`)")
    return path


def read_parquet(path: Path | str, **options: Any) -> pd.DataFrame:
    """Read a stage input (see :func:`require`); a column asked for and absent is named.

    ``options`` go to :func:`pandas.read_parquet` (``filters`` reads only the rows needed).
    """
    path = require(path)
    missing = [c for c in options.get("columns") or () if c not in pq.read_schema(path).names]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return pd.read_parquet(path, **options)


def run(main: Callable[[Params], None]) -> None:
    """Run a stage on ``./params.yaml``, as DVC does; bad input is one line and exit code 1."""
    exit_on_input_error(lambda: main(load_params()), log)
