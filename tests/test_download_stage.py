"""The download stage on params.yaml in its working directory: in process for what it writes, as
DVC runs it (a subprocess) for how it fails."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import write_kaggle_csvs
from credit_scoring.contract.tables import TABLES
from tests.support.stages import run_stage


def stage_folder(workdir: Path, data: dict) -> Path:
    """``workdir`` with the stage's params: where it writes, and ``data``, where it reads."""
    params = {"data": {"raw_dir": "data/raw", "summary": "reports/data.json", **data}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    return workdir


@pytest.fixture
def kaggle_dir(synthetic, tmp_path) -> Path:
    return write_kaggle_csvs(synthetic, tmp_path / "kaggle")


def test_local_source_writes_every_table_and_a_summary(kaggle_dir, tmp_path, synthetic):
    run_stage("download", stage_folder(tmp_path, {"source": "local", "path": str(kaggle_dir)}))
    for name in TABLES:
        frame = pd.read_parquet(tmp_path / "data/raw" / f"{name}.parquet")
        assert len(frame) == len(synthetic[name])
    summary = yaml.safe_load((tmp_path / "reports/data.json").read_text())
    assert summary["rows"]["bureau"] == len(synthetic["bureau"])
    assert summary["default_rate"] == pytest.approx(
        synthetic["application_train"].TARGET.mean(), abs=1e-6
    )
    assert set(summary["orphan_rows"].values()) == {0}


@pytest.mark.parametrize(
    ("table", "breakage", "expected"),
    [
        ("bureau", lambda f: f.drop(columns="AMT_CREDIT_SUM"), "bureau.AMT_CREDIT_SUM: missing"),
        ("bureau", lambda f: f.assign(EXTRA=1), "bureau.EXTRA: unexpected column"),
        (
            "application_train",
            lambda f: f.assign(AMT_CREDIT=f.AMT_CREDIT.astype(object).where(f.index != 3, "lots")),
            "application_train.AMT_CREDIT: expected float64",
        ),
        (
            "application_train",
            lambda f: f.assign(TARGET=f.TARGET.where(f.index != 5, 2)),
            "application_train.TARGET: values must be in [0, 1]",
        ),
        (  # a hard limit: a normalised score is in [0, 1]
            "application_train",
            lambda f: f.assign(EXT_SOURCE_2=f.EXT_SOURCE_2.where(f.index != 3, 7.0)),
            "application_train.EXT_SOURCE_2: values must be in [0, 1], 1 bad value(s), "
            "first 7.0 at row 3",
        ),
        (  # born after the application
            "application_test",
            lambda f: f.assign(DAYS_BIRTH=f.DAYS_BIRTH.where(f.index != 0, 500)),
            "application_test.DAYS_BIRTH: values must be in [-36525, -6574.5], 1 bad value(s), "
            "first 500 at row 0",
        ),
        (
            "previous_application",
            lambda f: pd.concat([f, f.head(1)]),
            "previous_application.SK_ID_PREV: 1 duplicate key",
        ),
        ("credit_card_balance", lambda f: f.head(0), "credit_card_balance: the table is empty"),
    ],
)
def test_bad_input_exits_non_zero_naming_table_and_column(
    kaggle_dir, tmp_path, synthetic, table, breakage, expected
):
    breakage(synthetic[table]).to_csv(kaggle_dir / f"{table}.csv", index=False)
    previous = tmp_path / "data/raw"
    previous.mkdir(parents=True)
    (previous / "kept.parquet").write_text("the last good output")

    folder = stage_folder(tmp_path, {"source": "local", "path": str(kaggle_dir)})
    done = run_stage("download", folder, in_process=False, timeout=300)
    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert [p.name for p in previous.iterdir()] == ["kept.parquet"]  # nothing half-written
    assert not (tmp_path / "reports/data.json").exists()


def test_missing_file_is_named(kaggle_dir, tmp_path):
    (kaggle_dir / "installments_payments.csv").unlink()
    folder = stage_folder(tmp_path, {"source": "local", "path": str(kaggle_dir)})
    done = run_stage("download", folder, in_process=False, timeout=300)
    assert done.returncode == 1
    assert "installments_payments.csv not found" in done.stderr
    assert not (tmp_path / "data/raw").exists()


def test_kaggle_without_credentials_says_so_and_never_falls_back(tmp_path):
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("KAGGLE_")}
    env.update(HOME=str(tmp_path), KAGGLE_CONFIG_DIR=str(tmp_path / "kaggle-config"))
    data = {
        "source": "kaggle",
        "competition": "home-credit-default-risk",
        "download_dir": str(tmp_path / "download"),
    }
    done = run_stage("download", stage_folder(tmp_path, data), in_process=False, env=env)
    assert done.returncode == 1
    assert "Kaggle credentials are missing" in done.stderr
    assert "kaggle.json" in done.stderr
    assert not (tmp_path / "data/raw").exists()
