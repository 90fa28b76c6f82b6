"""What every stage entry point shares: its parameters, logging, and a clean exit on bad input."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from credit_scoring.errors import InputError

log = logging.getLogger("pipelines")


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def require(path: Path | str) -> Path:
    """A stage input that must exist; a missing one is one clear line, not a traceback."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found; run the stage that writes it (`dvc repro`)")
    return path


def read_parquet(path: Path, **options: Any) -> pd.DataFrame:
    """Read a stage input (see :func:`require`).

    ``options`` go to :func:`pandas.read_parquet` (``filters`` reads only the rows needed).
    """
    return pd.read_parquet(require(path), **options)


def run(main: Callable[[], None]) -> None:
    """Run a stage; bad input ends it with one clear line and exit code 1, not a traceback.

    The error exit skips interpreter teardown (``os._exit``): with the native thread pools of
    pyarrow and polars still alive, teardown after an exception sometimes aborts the process
    ("terminate called without an active exception", exit -6) instead of returning 1.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        main()
    except InputError as err:
        log.error("%s", err)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(1)
