"""Stratified K-fold LightGBM on one scale: rounds chosen away from the scored folds.

For every fold, the number of boosting rounds is found by early stopping on an inner split of
that fold's training part, never on the fold it scores. The folds' inner validation curves are
pooled into one number of rounds (the peak of their mean); every fold is then refitted on its
whole training part for that many rounds and scores its held-out part, and the served model is
fitted on every development applicant for the same rounds. The out-of-fold scores, the
calibration and threshold fitted on them, and the served model thus share one scale. A fold's
labels reach the pooled number only as part of the other folds' inner validation sets, one curve
of the mean; the hold-out, which nothing here sees, measures what optimism is left.

The protocol is written once (:func:`cross_validate_with`, :func:`train_with`) against a
:class:`Learner`, which fits and predicts rows of the development set: :class:`InMemory` here,
and a Dask cluster's in ``credit_scoring.engine.train``. The folds' fits are independent, so the
protocol hands them to the learner together, and :class:`InMemory` runs them in processes of
their own, as :mod:`credit_scoring.cores` shares out the cores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.cores import Share
from credit_scoring.errors import ConfigError
from credit_scoring.modelling.calibration import Calibration

log = logging.getLogger(__name__)

# The prediction files' columns beside KEY and TARGET: the fold that scored an applicant, the
# model's own probability, and the calibrated one that thresholds and the service use; with the
# final fit on every applicant, the hold-out's calibrated probability from the refitted model.
FOLD, UNCALIBRATED, PROBABILITY, REFITTED = "fold", "uncalibrated", "probability", "refitted"
# ``train.final_fit``: the served model fitted on the development applicants (the validated
# model itself), or refitted on the development and hold-out applicants.
FINAL_FITS = ("development", "all")
# What each choice means for the figures, in the words the card, the validation report and
# /model_info give.
FINAL_FIT_STATEMENTS = {
    "development": (
        "The served model is the validated model, fitted on the development applicants only:"
        " the hold-out figures are its own, out of sample."
    ),
    "all": (
        "The served model was refitted on the development and hold-out applicants with the"
        " validated settings and number of rounds. The hold-out figures describe the validated"
        " model, fitted on the development applicants only; the refit check (refit.json) shows"
        " how far the served model departs from it on the hold-out applicants."
    ),
}

FIXED_PARAMS = {
    "objective": "binary",
    "metric": ["auc", "binary_logloss"],
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
# Parameters that say where a model was fitted (threads, a distributed fit's network), not what
# it is: left out of its text, so that the model file is the same bits on any machine.
MACHINE_PARAMS = ("num_threads", "machines", "local_listen_port")


@dataclass(frozen=True)
class Fold:
    """One fold: its inner early stopping (curve and best iteration) and its scored part's AUC."""

    index: int
    best_iteration: int
    auc: float
    logloss: float
    curve: Mapping[str, Sequence[float]] = field(repr=False)


@dataclass(frozen=True)
class FoldPlan:
    """The rows of one fold: fitted on, stopped early on (inside the fitted part), scored."""

    fit: np.ndarray
    stop: np.ndarray
    held: np.ndarray


@dataclass(frozen=True)
class CrossValidation:
    oof: np.ndarray
    fold_of: np.ndarray
    folds: tuple[Fold, ...]
    rounds: int
    seconds: float

    def oof_frame(self, ids: np.ndarray, target: np.ndarray) -> pd.DataFrame:
        """The out-of-fold predictions as ``oof.parquet`` holds them: each applicant once."""
        return pd.DataFrame({KEY: ids, TARGET: target, FOLD: self.fold_of, PROBABILITY: self.oof})

    def folds_report(self) -> dict[str, object]:
        """Each fold's AUC and inner best iteration, and the rounds of every fit (folds.json)."""
        return {
            "folds": [{"auc": f.auc, "best_iteration": f.best_iteration} for f in self.folds],
            "auc_std": float(np.std([f.auc for f in self.folds])),
            "rounds": self.rounds,
        }


def plan_folds(y: np.ndarray, *, n_folds: int, stop_share: float, seed: int) -> list[FoldPlan]:
    """Stratified folds, each with a stratified early-stopping split of its training part."""
    outer = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    plans = []
    for k, (train, held) in enumerate(outer.split(np.zeros(len(y)), y)):
        inner = StratifiedShuffleSplit(n_splits=1, test_size=stop_share, random_state=seed + k)
        fit, stop = next(inner.split(np.zeros(len(train)), y[train]))
        plans.append(FoldPlan(fit=np.sort(train[fit]), stop=np.sort(train[stop]), held=held))
    return plans


def lightgbm_params(params: Mapping, seed: int, threads: int) -> dict:
    """The configured LightGBM parameters plus the ones that make a run repeatable."""
    return {**params, **FIXED_PARAMS, "seed": seed, "num_threads": threads}


def monotone_params(features: Sequence[str], directions: Mapping[str, int]) -> dict[str, Any]:
    """LightGBM's ``monotone_constraints`` from directions by feature name (+1 up, -1 down).

    +1: the risk never falls as the feature rises (days past due); -1: it never rises (an
    external credit score). Unnamed features are free. No directions, no constraint at all.

    Raises:
        ConfigError: a name that is not a feature, or a direction other than +1 or -1.
    """
    if not directions:
        return {}
    unknown = sorted(set(directions) - set(features))
    if unknown:
        raise ConfigError(f"model.monotone: {unknown} are not features of the model")
    wrong = {name: d for name, d in directions.items() if d not in (1, -1)}
    if wrong:
        raise ConfigError(f"model.monotone: directions must be 1 or -1, got {wrong}")
    return {"monotone_constraints": [int(directions.get(name, 0)) for name in features]}


def booster_params(model: Mapping[str, Any], features: Sequence[str], threads: int) -> dict:
    """Every LightGBM parameter of a fit: the ``model`` section's, its monotone directions by
    feature name, and the fixed ones that make a run repeatable."""
    params = {**model["lightgbm"], **monotone_params(features, model["monotone"])}
    return lightgbm_params(params, model["seed"], threads)


def _dataset(
    x: np.ndarray, y: np.ndarray, features: Sequence[str], categorical: Sequence[int]
) -> lgb.Dataset:
    return lgb.Dataset(
        x, label=y, feature_name=list(features), categorical_feature=list(categorical),
        free_raw_data=False,
    )  # fmt: skip


def pooled_rounds(curves: Sequence[Sequence[float]]) -> int:
    """The round at which the folds' early-stopping curves (validation AUC) peak on average.

    A curve that stopped early keeps its last value, as if its model no longer changed. Averaging
    the curves first is steadier than averaging their peaks: on a small inner split one fold's
    peak can sit at round 3 by chance, while the mean curve still rises.
    """
    length = max(len(c) for c in curves)
    padded = np.array([[*c, *([c[-1]] * (length - len(c)))] for c in curves], dtype="float64")
    return int(np.argmax(padded.mean(axis=0))) + 1


Curve = Mapping[str, Sequence[float]]


def model_text(booster: lgb.Booster) -> str:
    """The model in LightGBM's text format, without :data:`MACHINE_PARAMS`."""
    return "\n".join(
        line
        for line in booster.model_to_string().split("\n")
        if not line.startswith(tuple(f"[{name}: " for name in MACHINE_PARAMS))
    )


class Learner(Protocol):
    """What the protocol asks of an engine's LightGBM; rows are positions in its feature matrix.

    Each method given several fits may run them at once: they are independent.
    :class:`InMemory` is the local engine; ``credit_scoring.engine.train`` has the Dask one.
    """

    def stop_early_each(
        self, splits: Sequence[tuple[np.ndarray, np.ndarray]], *, max_rounds: int, patience: int
    ) -> list[tuple[int, Curve]]:
        """For each ``(fit, stop)``: fit on ``fit`` until the AUC on ``stop`` has not risen for
        ``patience`` rounds; the best iteration (1-based) and each metric on ``stop`` by round.
        """
        ...

    def fit_each(self, rows: Sequence[np.ndarray | None], rounds: int) -> list[lgb.Booster]:
        """A model for each of ``rows`` (None: every row), fitted for ``rounds`` rounds."""
        ...

    def predict(self, booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
        """The model's probabilities for ``rows``."""
        ...


@dataclass(frozen=True)
class InMemory:
    """The local engine's :class:`Learner`: the feature matrix in this process, ``lgb.train``.

    Fits given together run ``Share.of(cores, fits).jobs`` at a time in worker processes (joblib,
    which maps the matrix into them rather than copy it), each on its share of ``cores``.
    """

    x: np.ndarray
    y: np.ndarray
    features: Sequence[str]
    categorical: Sequence[int]
    params: Mapping[str, Any]
    cores: int = 1

    def _dataset(self, rows: np.ndarray | None) -> lgb.Dataset:
        if rows is None:
            return _dataset(self.x, self.y, self.features, self.categorical)
        return _dataset(self.x[rows], self.y[rows], self.features, self.categorical)

    def _each(self, fits: int) -> tuple[Parallel, InMemory]:
        """The worker pool for ``fits`` fits, and this learner with each fit's threads."""
        share = Share.of(self.cores, fits)
        params = {**self.params, "num_threads": share.threads}
        return Parallel(n_jobs=share.jobs), replace(self, params=params, cores=share.threads)

    def stop_early(
        self, fit: np.ndarray, stop: np.ndarray, *, max_rounds: int, patience: int
    ) -> tuple[int, Curve]:
        """One early stopping (:meth:`Learner.stop_early_each`), in this process."""
        curve: dict = {}
        booster = lgb.train(
            self.params,
            self._dataset(fit),
            num_boost_round=max_rounds,
            valid_sets=[self._dataset(stop)],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(patience, first_metric_only=True, verbose=False),
                lgb.record_evaluation(curve),
            ],
        )
        return booster.best_iteration, curve["valid"]

    def stop_early_each(
        self, splits: Sequence[tuple[np.ndarray, np.ndarray]], *, max_rounds: int, patience: int
    ) -> list[tuple[int, Curve]]:
        pool, learner = self._each(len(splits))
        return pool(
            delayed(learner.stop_early)(fit, stop, max_rounds=max_rounds, patience=patience)
            for fit, stop in splits
        )

    def fit(self, rows: np.ndarray | None, rounds: int) -> lgb.Booster:
        """One model (:meth:`Learner.fit_each`), in this process."""
        return lgb.train(self.params, self._dataset(rows), num_boost_round=rounds)

    def fit_each(self, rows: Sequence[np.ndarray | None], rounds: int) -> list[lgb.Booster]:
        pool, learner = self._each(len(rows))
        return pool(delayed(learner.fit)(some, rounds) for some in rows)

    def predict(self, booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
        return booster.predict(self.x[rows], num_threads=self.cores)


PROTOCOL = ("n_folds", "stop_share", "seed", "max_rounds", "early_stopping_rounds")


def protocol_settings(model: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model`` section's settings of the protocol, as :func:`cross_validate_with` takes
    them."""
    return {name: model[name] for name in PROTOCOL}


def cross_validate_with(
    learner: Learner,
    y: np.ndarray,
    *,
    n_folds: int,
    stop_share: float,
    seed: int,
    max_rounds: int,
    early_stopping_rounds: int,
    final: Sequence[np.ndarray | None] = (),
) -> tuple[CrossValidation, list[lgb.Booster]]:
    """Out-of-fold predictions for every applicant, all from fits of one number of rounds, and
    a model on each of ``final``'s rows for the same rounds, fitted beside the folds' refits.

    See the module's docstring for the protocol; ``stop_share`` is the share of each fold's
    training part held back for early stopping. Any engine runs it through its ``learner``.
    """
    start = time.perf_counter()
    plans = plan_folds(y, n_folds=n_folds, stop_share=stop_share, seed=seed)
    stopped = learner.stop_early_each(
        [(plan.fit, plan.stop) for plan in plans],
        max_rounds=max_rounds,
        patience=early_stopping_rounds,
    )
    for k, (best, _) in enumerate(stopped):
        log.info("fold %d/%d: stops early at iteration %d", k + 1, n_folds, best)
    rounds = pooled_rounds([curve["auc"] for _, curve in stopped])
    boosters = learner.fit_each(
        [np.sort(np.concatenate([plan.fit, plan.stop])) for plan in plans] + list(final), rounds
    )
    oof = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1, dtype="int64")
    folds = []
    for k, (plan, (best, curve), booster) in enumerate(
        zip(plans, stopped, boosters[:n_folds], strict=True)
    ):
        oof[plan.held] = learner.predict(booster, plan.held)
        fold_of[plan.held] = k
        held = y[plan.held], oof[plan.held]
        folds.append(
            Fold(
                index=k,
                best_iteration=best,
                auc=float(roc_auc_score(*held)),
                logloss=float(log_loss(*held, labels=[0, 1])),
                curve=curve,
            )
        )
        log.info("fold %d/%d: AUC %.4f at %d rounds", k + 1, n_folds, folds[-1].auc, rounds)
    cv = CrossValidation(oof, fold_of, tuple(folds), rounds, time.perf_counter() - start)
    return cv, boosters[n_folds:]


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    params: Mapping,
    n_folds: int,
    stop_share: float,
    seed: int,
    cores: int,
    max_rounds: int,
    early_stopping_rounds: int,
) -> CrossValidation:
    """:func:`cross_validate_with` on a feature matrix in this process, on ``cores`` cores."""
    learner = InMemory(x, y, features, categorical, lightgbm_params(params, seed, cores), cores)
    return cross_validate_with(
        learner,
        y,
        n_folds=n_folds,
        stop_share=stop_share,
        seed=seed,
        max_rounds=max_rounds,
        early_stopping_rounds=early_stopping_rounds,
    )[0]


def fit_final(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    params: Mapping,
    seed: int,
    cores: int,
    rounds: int,
) -> lgb.Booster:
    """Fit on every development applicant for the number of rounds the folds agreed on."""
    learner = InMemory(x, y, features, categorical, lightgbm_params(params, seed, cores), cores)
    return learner.fit(None, rounds)


def final_fit_on_all(final_fit: str) -> bool:
    """Whether ``train.final_fit`` asks for the refit on every applicant.

    Raises:
        ConfigError: a value other than those of :data:`FINAL_FITS`.
    """
    if final_fit not in FINAL_FITS:
        raise ConfigError(f"train.final_fit: {final_fit!r} is not one of {list(FINAL_FITS)}")
    return final_fit == FINAL_FITS[1]


@dataclass(frozen=True)
class Trained:
    """What the protocol yields: the cross-validation, the calibration fitted on its
    out-of-fold scores, the validated model (fitted on every development applicant), and,
    when the final fit takes every applicant, the model refitted on the development and
    hold-out applicants with the same settings and rounds."""

    cv: CrossValidation
    calibration: Calibration
    booster: lgb.Booster
    refitted: lgb.Booster | None = None

    @property
    def served(self) -> lgb.Booster:
        """The model the package serves: the refitted one when there is one."""
        return self.booster if self.refitted is None else self.refitted


def train_with(
    learner: Learner, y: np.ndarray, model: Mapping[str, Any], *, refit: bool = False
) -> Trained:
    """The whole training protocol (module docstring), then Platt calibration on the OOF scores.

    ``y`` holds the development applicants' labels, the learner's first rows. With ``refit``,
    the learner's rows after them are the labelled hold-out, and a second final fit takes every
    row. ``model`` holds the protocol's settings (:data:`PROTOCOL`); the learner carries the
    LightGBM parameters (:func:`booster_params`).
    """
    cv, final = cross_validate_with(
        learner,
        y,
        **protocol_settings(model),
        final=[np.arange(len(y)), None] if refit else [None],
    )
    return Trained(cv, Calibration.fit(y, cv.oof), *final)


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    model: Mapping[str, Any],
    cores: int,
    holdout: tuple[np.ndarray, np.ndarray] | None = None,
) -> Trained:
    """:func:`train_with` on a feature matrix in this process, on ``cores`` cores.

    ``model`` is the ``model`` section: the LightGBM parameters (``lightgbm``), the monotone
    directions by feature name (``monotone``) and the protocol's settings. ``holdout``, the
    hold-out applicants' features and labels, asks for the refit on every applicant.
    """
    params = booster_params(model, features, cores)
    if holdout is not None:
        x, labels = np.concatenate([x, holdout[0]]), np.concatenate([y, holdout[1]])
    else:
        labels = y
    learner = InMemory(x, labels, features, categorical, params, cores)
    return train_with(learner, y, model, refit=holdout is not None)


def top_importance(booster: lgb.Booster, n: int = 30) -> list[dict]:
    """The ``n`` features with the largest total gain, largest first."""
    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(-gain, kind="stable")[:n]
    names = booster.feature_name()
    return [{"feature": names[i], "gain": float(gain[i])} for i in order]
