"""A stage whose input is missing exits 1 with one line naming the file, never a traceback."""

from __future__ import annotations

import pytest

from tests.support.stages import run_stage, write_params

# The first input each stage misses in a folder holding only params.yaml and the raw tables
# (drift reads its model through the same `require` as package).
FIRST_MISSING = {
    "train": "data/features/feature_schema.json",
    "package": "models/model.txt",
}


@pytest.mark.parametrize("stage", FIRST_MISSING)
def test_a_missing_input_is_named(stage, synthetic, tmp_path):
    write_params(tmp_path)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "test"):
        synthetic[f"application_{split}"].to_parquet(raw / f"application_{split}.parquet")
    bentoml = {"BENTOML_HOME": str(tmp_path / "bentoml")}
    done = run_stage(stage, tmp_path, in_process=False, env=bentoml, timeout=300)
    assert done.returncode == 1
    assert f"{FIRST_MISSING[stage]} not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bentoml").exists()
