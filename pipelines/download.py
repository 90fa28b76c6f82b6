"""download: bring the eight Kaggle tables into data/raw/, checked against the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from credit_scoring.atomic import write_json, write_tables
from credit_scoring.errors import SourceError
from credit_scoring.sources.kaggle import download_kaggle
from credit_scoring.sources.local import read_local
from credit_scoring.sources.summary import summarize_tables
from credit_scoring.sources.synthetic import generate
from pipelines.common import Params, run


def read_source(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    match cfg["source"]:
        case "synthetic":
            return generate(
                n_train=cfg["n_train"],
                n_test=cfg["n_test"],
                seed=cfg["seed"],
                prevalence=cfg["prevalence"],
                drift_columns=cfg["drift"]["columns"],
                drift_shift=cfg["drift"]["shift"],
            )
        case "local":
            return read_local(Path(cfg["path"]))
        case "kaggle":
            return read_local(download_kaggle(Path(cfg["download_dir"]), cfg["competition"]))
    raise SourceError(f"data.source must be synthetic, local or kaggle, not {cfg['source']!r}")


def main(params: Params) -> None:
    cfg = params["data"]
    tables = read_source(cfg)
    write_tables(tables, cfg["raw_dir"])
    write_json(summarize_tables(tables), cfg["summary"])


if __name__ == "__main__":
    run(main)
