"""Stratified K-fold LightGBM: honest out-of-fold predictions, then one model for serving.

The served model is refitted on every training applicant for the folds' mean best iteration.
The number of rounds comes from the folds, so nothing about the final fit is tuned on data it
saw, and one LightGBM text file is all the service loads (TreeSHAP stays exact).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from credit_scoring.contract.tables import KEY, TARGET

log = logging.getLogger(__name__)

FOLD, PROBABILITY = "fold", "probability"  # oof.parquet's columns beside KEY and TARGET

FIXED_PARAMS = {
    "objective": "binary",
    "metric": ["auc", "binary_logloss"],
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}


@dataclass(frozen=True)
class Fold:
    """One fold's validation result and its learning curve (validation AUC and log loss)."""

    index: int
    best_iteration: int
    auc: float
    logloss: float
    curve: Mapping[str, Sequence[float]] = field(repr=False)


@dataclass(frozen=True)
class CrossValidation:
    oof: np.ndarray
    fold_of: np.ndarray
    folds: tuple[Fold, ...]
    seconds: float

    @property
    def mean_best_iteration(self) -> int:
        return round(float(np.mean([f.best_iteration for f in self.folds])))

    def oof_frame(self, ids: np.ndarray, target: np.ndarray) -> pd.DataFrame:
        """The out-of-fold predictions as ``oof.parquet`` holds them: each applicant once."""
        return pd.DataFrame({KEY: ids, TARGET: target, FOLD: self.fold_of, PROBABILITY: self.oof})

    def folds_report(self) -> dict[str, object]:
        """Each fold's AUC and best iteration, and the final model's rounds (``folds.json``)."""
        return {
            "folds": [{"auc": f.auc, "best_iteration": f.best_iteration} for f in self.folds],
            "auc_std": float(np.std([f.auc for f in self.folds])),
            "final_rounds": self.mean_best_iteration,
        }


def lightgbm_params(params: Mapping, seed: int, threads: int) -> dict:
    """The configured LightGBM parameters plus the ones that make a run repeatable."""
    return {**params, **FIXED_PARAMS, "seed": seed, "num_threads": threads}


def _dataset(
    x: np.ndarray, y: np.ndarray, features: Sequence[str], categorical: Sequence[int]
) -> lgb.Dataset:
    return lgb.Dataset(
        x, label=y, feature_name=list(features), categorical_feature=list(categorical),
        free_raw_data=False,
    )  # fmt: skip


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    params: Mapping,
    n_folds: int,
    seed: int,
    threads: int,
    max_rounds: int,
    early_stopping_rounds: int,
) -> CrossValidation:
    """Train one model per stratified fold, stopping early on that fold's held-out part.

    Every training applicant gets exactly one prediction, from the model that did not see it.
    """
    start = time.perf_counter()
    lgb_params = lightgbm_params(params, seed, threads)
    oof = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1, dtype="int64")
    folds = []
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (fit, held) in enumerate(splitter.split(x, y)):
        curve: dict = {}
        booster = lgb.train(
            lgb_params,
            _dataset(x[fit], y[fit], features, categorical),
            num_boost_round=max_rounds,
            valid_sets=[_dataset(x[held], y[held], features, categorical)],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
                lgb.record_evaluation(curve),
            ],
        )
        oof[held] = booster.predict(x[held], num_iteration=booster.best_iteration)
        fold_of[held] = k
        fold = Fold(
            index=k,
            best_iteration=booster.best_iteration,
            auc=float(roc_auc_score(y[held], oof[held])),
            logloss=float(log_loss(y[held], oof[held], labels=[0, 1])),
            curve=curve["valid"],
        )
        log.info(
            "fold %d/%d: AUC %.4f at iteration %d", k + 1, n_folds, fold.auc, fold.best_iteration
        )
        folds.append(fold)
    return CrossValidation(oof, fold_of, tuple(folds), time.perf_counter() - start)


def fit_final(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    params: Mapping,
    seed: int,
    threads: int,
    rounds: int,
) -> lgb.Booster:
    """Refit on every training applicant for the number of rounds the folds agreed on."""
    return lgb.train(
        lightgbm_params(params, seed, threads),
        _dataset(x, y, features, categorical),
        num_boost_round=rounds,
    )


def top_importance(booster: lgb.Booster, n: int = 30) -> list[dict]:
    """The ``n`` features with the largest total gain, largest first."""
    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(-gain, kind="stable")[:n]
    names = booster.feature_name()
    return [{"feature": names[i], "gain": float(gain[i])} for i in order]
