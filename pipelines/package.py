"""package: everything the service needs, in one folder under a version made of its content.

The folder (``package.dir``) is the stage's DVC output, so DVC caches, pushes and pulls the very
package the service runs; ``python -m credit_scoring.store`` puts it into the BentoML model store.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np

from credit_scoring.cost import oof_scores
from credit_scoring.explain import describe
from credit_scoring.features import KEY, FeatureSchema, history_rows
from credit_scoring.io import atomic_path, write_json
from credit_scoring.model import top_importance
from credit_scoring.packaging import MANIFEST, Manifest, model_card, write_package
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
    with atomic_path(cfg["dir"]) as folder:
        hashes = write_package(
            folder,
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
        manifest = Manifest.of(cfg["name"], hashes)
        write_json(manifest.to_dict(), folder / MANIFEST)
    log.info("%s packaged in %s", manifest.tag, cfg["dir"])


if __name__ == "__main__":
    run(main)
