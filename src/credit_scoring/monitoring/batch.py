"""A batch of applications to check after deployment, held to the application_test contract."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from credit_scoring.contract.conform import conform_table
from credit_scoring.contract.tables import TARGET
from credit_scoring.errors import SourceError

log = logging.getLogger(__name__)


def read_batch(path: Path) -> pd.DataFrame:
    """A CSV or parquet batch of raw applications, conformed to the contract (TARGET ignored)."""
    if path.suffix not in (".csv", ".parquet"):
        raise SourceError(f"{path}: expected a .csv or .parquet file")
    if not path.is_file():
        raise SourceError(f"{path} not found")
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    log.info("checking %s (%d rows) against the application_test contract", path, len(frame))
    return conform_table("application_test", frame.drop(columns=TARGET, errors="ignore"))
