"""Shared fixtures: synthetic tables small enough for unit tests, and the repository's root."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from credit_scoring.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_train": 3000, "n_test": 600, "seed": 7}


@pytest.fixture(scope="session")
def synthetic() -> dict[str, pd.DataFrame]:
    return generate(**SMALL)


def write_kaggle_csvs(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write tables the way Kaggle ships them: one CSV each, header, no index, empty for missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder
