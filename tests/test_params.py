"""params.yaml is the committed composition of conf/, and every data option composes."""

from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from credit_scoring.config import compose_params


def test_params_yaml_is_the_composition_of_conf():
    committed = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert committed == compose_params(ROOT / "conf"), "run `make params` and commit params.yaml"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("synthetic", {"source": "synthetic", "n_train": 10000}),
        ("synthetic_full", {"source": "synthetic", "n_train": 307511, "n_test": 48744}),
        ("local", {"source": "local", "path": "data/kaggle"}),
        ("kaggle", {"source": "kaggle", "competition": "home-credit-default-risk"}),
    ],
)
def test_each_data_option_composes(option, expected):
    data = yaml.safe_load(compose_params(ROOT / "conf", [f"data={option}"]))["data"]
    assert expected.items() <= data.items()
    assert data["raw_dir"] == "data/raw"
