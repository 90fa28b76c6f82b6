"""A seeded search over the LightGBM settings that never sees the hold-out.

Each trial runs the training protocol of :mod:`credit_scoring.modelling.cross_validation` on
the development applicants with one set of settings, and is scored by its out-of-fold AUC; its
number of rounds comes from the protocol's inner early stopping, as in training. The hold-out
is neither read nor scored: it stays the one honest measure of whichever settings win, when the
train stage runs with them (``dvc exp run -S model=tuned``).

The study is Optuna's (a TPE sampler), stored in SQLite so that a stopped search resumes. Trials
run in batches of as many as there are cores, each in a process of its own on one share of them
(:class:`~credit_scoring.cores.Share`). A batch is asked for, scored and told in trial order, so
the same seed, data and space give the same trials, however long each takes. The first trial is
the model's own settings, so the study shows what the search gained over them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from joblib import Parallel, delayed

from credit_scoring.cores import Share
from credit_scoring.errors import ConfigError
from credit_scoring.modelling.cross_validation import (
    InMemory,
    booster_params,
    cross_validate_with,
    protocol_settings,
)
from credit_scoring.validation.report import records

log = logging.getLogger(__name__)

ROUNDS = "rounds"  # a trial's user attribute: the rounds its folds agreed on


@dataclass(frozen=True)
class Dimension:
    """One LightGBM parameter searched from ``low`` to ``high``: whole numbers when both bounds
    are, on a log scale when ``log``."""

    name: str
    low: float
    high: float
    log: bool

    @property
    def whole(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial: optuna.Trial) -> float | int:
        if self.whole:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def holds(self, value: Any) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high


@dataclass(frozen=True)
class SearchSpace:
    """``tune.space``: the LightGBM parameters searched, each a :class:`Dimension`."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def from_params(cls, space: Mapping[str, Any], lightgbm: Mapping[str, Any]) -> SearchSpace:
        """Raises:
        ConfigError: a parameter the model's ``lightgbm`` section does not set, or bounds that
            are not two numbers, low below high (and positive on a log scale)."""
        if not space:
            raise ConfigError("tune.space: no parameter to search")
        dimensions = []
        for name, raw in space.items():
            if name not in lightgbm:
                raise ConfigError(f"tune.space.{name}: not a parameter of model.lightgbm")
            low, high, log_scale = raw.get("low"), raw.get("high"), bool(raw.get("log", False))
            numbers = all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)
            )
            if not numbers or low >= high or (log_scale and low <= 0):
                raise ConfigError(
                    f"tune.space.{name}: expected low < high (both above 0 with log), got {raw}"
                )
            dimensions.append(Dimension(name, low, high, log_scale))
        return cls(tuple(dimensions))

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]


def study_name(space: SearchSpace, model: Mapping[str, Any], data: Path, seed: int) -> str:
    """A name that changes with anything that changes a trial's score: the space, the model's
    settings and protocol, the development applicants' features, and the seed. A search resumes
    only the study of its own name."""
    digest = hashlib.sha256()
    spec = [[asdict(d) for d in space.dimensions], dict(model), seed]
    digest.update(json.dumps(spec, sort_keys=True).encode())
    with data.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"tune-{digest.hexdigest()[:16]}"


def score_settings(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    model: Mapping[str, Any],
    settings: Mapping[str, Any],
    cores: int,
) -> tuple[float, int]:
    """One trial: the protocol's out-of-fold AUC with ``settings`` over the model's LightGBM
    parameters, and the rounds its folds agreed on."""
    from sklearn.metrics import roc_auc_score

    tried = {**model, "lightgbm": {**model["lightgbm"], **settings}}
    learner = InMemory(x, y, features, categorical, booster_params(tried, features, cores), cores)
    cv, _ = cross_validate_with(learner, y, **protocol_settings(model))
    return float(roc_auc_score(y, cv.oof)), cv.rounds


def search(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[int],
    model: Mapping[str, Any],
    space: SearchSpace,
    trials: int,
    seed: int,
    storage: str,
    name: str,
    cores: int,
) -> optuna.Study:
    """Run the study ``name`` in ``storage`` until it holds ``trials`` complete trials.

    A resumed study goes on from its complete trials (one stopped mid-batch leaves trials
    that never finished, which are marked failed and not counted); its sampler's seed moves
    with the number done, so a resumed search never repeats a trial it already ran.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True
    )
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    study.sampler = optuna.samplers.TPESampler(seed=seed + done)
    own = {d.name: model["lightgbm"][d.name] for d in space.dimensions}
    if not study.trials and all(d.holds(own[d.name]) for d in space.dimensions):
        study.enqueue_trial(own)
    while done < trials:
        share = Share.of(cores, trials - done)
        batch = [study.ask() for _ in range(share.jobs)]
        settings = [{d.name: d.suggest(trial) for d in space.dimensions} for trial in batch]
        scores = Parallel(n_jobs=share.jobs)(
            delayed(score_settings)(
                x,
                y,
                features=features,
                categorical=categorical,
                model=model,
                settings=tried,
                cores=share.threads,
            )
            for tried in settings
        )
        for trial, (auc, rounds) in zip(batch, scores, strict=True):
            trial.set_user_attr(ROUNDS, rounds)
            study.tell(trial, auc)
        done += len(batch)
        log.info(
            "trials %d/%d: best out-of-fold AUC %.4f (trial %d)",
            done,
            trials,
            study.best_value,
            study.best_trial.number,
        )
    return study


def history(study: optuna.Study) -> pd.DataFrame:
    """The complete trials in order: number, AUC, the best AUC so far, rounds and settings."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    frame = pd.DataFrame(
        [
            {"trial": t.number, "auc": t.value, ROUNDS: t.user_attrs[ROUNDS], **t.params}
            for t in done
        ]
    )
    frame.insert(2, "best_auc", frame["auc"].cummax())
    return frame


def importances(study: optuna.Study, seed: int) -> dict[str, float]:
    """Each searched parameter's share of the AUC's variance over the trials (fANOVA, seeded);
    empty under three complete trials, too few to tell."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 3:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {name: float(value) for name, value in found.items()}


def summary(study: optuna.Study, model: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The study as ``tuning.json`` holds it: the best trial, the model's own settings' trial
    (the first, when they lie in the space), the importances and every trial."""
    trials = history(study)

    def trial(row: pd.Series) -> dict[str, Any]:
        return {"trial": int(row["trial"]), "auc": float(row["auc"]), ROUNDS: int(row[ROUNDS])}

    best = study.best_trial
    own = trials[trials["trial"] == 0]
    return {
        "study": study.study_name,
        "trials": len(trials),
        "seed": seed,
        "best": {**trial(trials[trials["trial"] == best.number].iloc[0]), "settings": best.params},
        "own": {
            **trial(own.iloc[0]),
            "settings": {k: model["lightgbm"][k] for k in best.params},
        }
        if len(own) and study.trials[0].system_attrs.get("fixed_params")
        else None,
        "importances": importances(study, seed),
        "history": records(trials),
    }


def tuned_config(study: optuna.Study, space: SearchSpace) -> str:
    """``conf/model/tuned.yaml``: the default model with the best trial's settings."""
    best = study.best_trial
    lines = [
        "# Written by the tune pipeline (`make tune`, tuning/dvc.yaml): do not edit, search again.",
        f"# Study {study.study_name}: the best of {len(history(study))} trials, out-of-fold AUC"
        f" {best.value:.4f}",
        f"# on the development applicants at {best.user_attrs[ROUNDS]} rounds; the hold-out was"
        " never read.",
        "# `dvc exp run -S model=tuned` trains with it; `dvc exp show` compares it.",
        "defaults:",
        "  - default",
        "  - _self_",
        "",
        "name: tuned",
        "lightgbm:",
        *(f"  {name}: {best.params[name]!r}" for name in space.names),
    ]
    return "\n".join(lines) + "\n"
