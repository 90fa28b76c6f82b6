"""A stage whose input is missing exits 1 with one line naming the file, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

# The first input each stage misses in a folder holding only params.yaml and the raw tables
# (drift reads its model through the same `require` as package).
FIRST_MISSING = {
    "train": "data/features/feature_schema.json",
    "package": "models/model.txt",
}


@pytest.mark.parametrize("stage", FIRST_MISSING)
def test_a_missing_input_is_named(stage, synthetic, tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "test"):
        synthetic[f"application_{split}"].to_parquet(raw / f"application_{split}.parquet")
    done = subprocess.run(
        [sys.executable, "-m", f"pipelines.{stage}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp_path / "bentoml")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert f"{FIRST_MISSING[stage]} not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bentoml").exists()
