"""package: everything the service needs, saved in the BentoML model store under a content version.

The store lives outside the repository (``BENTOML_HOME``, by default ``~/bentoml``); the stage's
DVC output is the manifest naming the tag, so ``dvc repro`` knows when to package again.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np

from credit_scoring.cost import oof_scores
from credit_scoring.explain import describe
from credit_scoring.features import KEY, FeatureSchema, history_rows
from credit_scoring.io import write_json
from credit_scoring.model import top_importance
from credit_scoring.packaging import (
    model_card,
    package_version,
    save_to_store,
    write_package,
)
from credit_scoring.schema import load_contract
from credit_scoring.validation import RequestSchema
from pipelines.common import load_params, log, read_parquet, require, run


def main() -> None:
    params = load_params()
    cfg, paths, raw_dir = params["package"], params["features"], Path(params["data"]["raw_dir"])
    model_path, oof_path = require(params["train"]["model"]), Path(params["train"]["oof"])
    schema = FeatureSchema.from_json(require(paths["schema"]).read_text())
    model_text = model_path.read_text()
    booster = lgb.Booster(model_str=model_text)
    threshold = json.loads(require(params["cost"]["out"]).read_text())
    train = read_parquet(Path(paths["train"]))
    test = read_parquet(raw_dir / "application_test.parquet")
    known_ids = np.union1d(train[KEY].to_numpy("int64"), test[KEY].to_numpy("int64"))
    card = model_card(
        booster=booster,
        features=train,
        oof=oof_scores(read_parquet(oof_path), name=str(oof_path)),
        threshold=threshold,
        data={k: v for k, v in params["data"].items() if k not in ("raw_dir", "summary")},
        compare=cfg["compare"],
        importance_top=cfg["importance_top"],
        curve_points=params["cost"]["curve_points"],
        bins=cfg["histogram_bins"],
    )
    inputs = RequestSchema.from_contract(
        load_contract()["application_train"],
        schema,
        order=[row["feature"] for row in top_importance(booster, n=booster.num_feature())],
        describe=describe,
    )
    with tempfile.TemporaryDirectory() as tmp:
        hashes = write_package(
            Path(tmp),
            model_text=model_text,
            schema=schema,
            inputs=inputs,
            threshold=threshold,
            card=card,
            known_ids=known_ids,
            known_history=history_rows(
                read_parquet(Path(params["aggregate"]["out"])), known_ids, schema
            ),
            applications=test,
        )
        version = package_version(hashes)
        trained = datetime.fromtimestamp(model_path.stat().st_mtime, UTC)
        tag, new = save_to_store(
            Path(tmp),
            name=cfg["name"],
            version=version,
            metadata={"trained_at": trained.isoformat(timespec="seconds")},
        )
    log.info("%s %s in the BentoML model store", tag, "saved" if new else "already")
    write_json(
        {"tag": tag, "name": cfg["name"], "version": version, "files": hashes}, cfg["manifest"]
    )


if __name__ == "__main__":
    run(main)
