"""The train stage on Dask: the local protocol, each fit data-parallel with ``lightgbm.dask``.

The folds, the pooled rounds, the refits, the calibration and the final fit are the local
engine's (:func:`~credit_scoring.modelling.cross_validation.train_with`); only the
:class:`~credit_scoring.modelling.cross_validation.Learner` differs. Each worker holds a share of
the development rows, and every fit is one LightGBM training across the workers.

LightGBM's Dask estimators do not stop early (they hang or fail: LightGBM issues 3712, 4189,
6351). :meth:`OnCluster.stop_early` fits in blocks of ``patience`` rounds instead, each block
continuing the last (``init_model``), records the early-stopping rows' metrics by round
(``eval_set``), and replays LightGBM's own rule on that record (:func:`replay_early_stopping`):
the best iteration the callback would have picked from the same curve, with no worker having to
agree on when to stop. LightGBM evaluates a metric on the rows each worker holds and returns one
worker's record, so :class:`ShareRecord` sends every worker's to the scheduler's event log, and
the record is their mean weighted by rows: exact for the log loss, and for the AUC the mean of
the shares' AUCs, an estimate of the AUC of all the stop rows. Each block restarts LightGBM's
bagging and feature sampling from the seed: the curve after the first block is not the one a
single fit would record, though the rule read on it is the same.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import lightgbm as lgb
import numpy as np
from distributed import Client, get_worker
from lightgbm.dask import DaskLGBMClassifier

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.engine.frames import read_frame
from credit_scoring.errors import ClusterError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import Trained, booster_params, train_with

STOP = "stop"  # the name of the early-stopping rows in LightGBM's evaluation record


class ShareRecord:
    """A LightGBM callback run by every worker of a fit: its share of the stop rows' metrics by
    round, logged to the scheduler under ``topic`` (with the share's rows) as the fit ends."""

    order = 20  # where lgb.record_evaluation runs

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.record: dict[str, list[float]] = {}

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        for data, metric, value, *_ in env.evaluation_result_list or ():
            if data == STOP:
                self.record.setdefault(metric, []).append(float(value))
        if env.iteration == env.end_iteration - 1:
            rows = sum(d.num_data() for d in env.model.valid_sets)
            get_worker().log_event(self.topic, {"rows": rows, "record": self.record})


def pooled_record(shares: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The workers' records (``ShareRecord`` events) as one: by round, weighted by rows."""
    shares = [s for s in shares if s["rows"]]
    if not shares:
        raise ClusterError("no worker held any of the early-stopping rows")
    weights = np.array([s["rows"] for s in shares], dtype="float64")
    return {
        metric: list(weights @ np.array([s["record"][metric] for s in shares]) / weights.sum())
        for metric in shares[0]["record"]
    }


def replay_early_stopping(curve: Sequence[float], patience: int) -> tuple[int, int, bool]:
    """LightGBM's ``early_stopping`` callback, replayed on a recorded curve (higher is better).

    Returns the best iteration (1-based; the first of equal peaks), the rounds the callback
    would have run (the curve it would have recorded), and whether it would have stopped there.
    """
    best = 0
    for i, value in enumerate(curve):
        if value > curve[best]:
            best = i
        elif i - best >= patience:
            return best + 1, i + 1, True
    return best + 1, len(curve), False


@dataclass(frozen=True)
class OnCluster:
    """The Dask engine's :class:`~credit_scoring.modelling.cross_validation.Learner`.

    ``x`` holds the development rows in row chunks kept on the workers (:func:`spread_rows`),
    ``y`` their labels in the same chunks.
    """

    client: Client
    x: da.Array
    y: da.Array
    features: Sequence[str]
    categorical: Sequence[int]
    params: Mapping[str, Any]

    def _fit(self, rows: np.ndarray | None, rounds: int, **options: Any) -> DaskLGBMClassifier:
        x, y = (
            (self.x, self.y) if rows is None else (take_rows(self.x, rows), take_rows(self.y, rows))
        )
        model = DaskLGBMClassifier(client=self.client, n_estimators=rounds, **self.params)
        with warnings.catch_warnings():  # the sklearn wrapper always passes n_jobs: no news
            warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
            return model.fit(
                x,
                y,
                feature_name=list(self.features),
                categorical_feature=list(self.categorical),
                **options,
            )

    def stop_early(
        self, fit: np.ndarray, stop: np.ndarray, *, max_rounds: int, patience: int
    ) -> tuple[int, Mapping[str, Sequence[float]]]:
        record: dict[str, list[float]] = {}
        booster = None
        while True:
            topic = f"credit-scoring-stop-{uuid.uuid4().hex}"
            booster = self._fit(
                fit,
                min(patience, max_rounds - len(record.get("auc", ()))),
                init_model=booster,
                eval_X=(take_rows(self.x, stop),),
                eval_y=(take_rows(self.y, stop),),
                eval_names=[STOP],
                callbacks=[ShareRecord(topic)],
            ).booster_
            shares = [message for _, message in self.client.get_events(topic)]
            for metric, values in pooled_record(shares).items():
                record.setdefault(metric, []).extend(values)
            best, length, stopped = replay_early_stopping(record["auc"], patience)
            if stopped or length >= max_rounds:
                return best, {metric: values[:length] for metric, values in record.items()}

    def fit(self, rows: np.ndarray | None, rounds: int) -> lgb.Booster:
        return self._fit(rows, rounds).booster_

    def predict(self, booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
        return predict_rows(booster, take_rows(self.x, rows))


def take_rows(x: da.Array, rows: np.ndarray) -> da.Array:
    """The rows at sorted positions ``rows``, chunk by chunk, so each stays on its worker.

    ``x[rows]`` would regroup them into chunks of the old size, moving rows between workers and
    breaking the match between a fit's chunks and its early-stopping chunks.
    """
    bounds = np.cumsum([0, *x.chunks[0]])
    cut = np.searchsorted(rows, bounds)
    return da.concatenate(
        [x.blocks[i][rows[cut[i] : cut[i + 1]] - bounds[i]] for i in range(x.numblocks[0])]
    )


def predict_rows(booster: lgb.Booster, x: da.Array) -> np.ndarray:
    """The model's probabilities for the rows of ``x``, each chunk scored on its worker."""
    scores = x.map_blocks(booster.predict, drop_axis=1, meta=np.empty(0, dtype="float64"))
    return scores.compute()


def spread_rows(client: Client, x: da.Array) -> da.Array:
    """``x`` with its row chunks computed, then kept round-robin on the workers.

    LightGBM trains each worker on the chunks it holds; left to the scheduler, the chunks of a
    file read in one piece would all stay on one worker, and one machine would do the training.
    A fixed placement also makes the data-parallel fits repeatable from run to run. It is only a
    preference, on the last step: a chunk whose worker is lost is computed again elsewhere.
    """
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    computed = client.compute(list(x.to_delayed().ravel()))
    placed = [
        client.submit(
            np.asarray, chunk, workers=[workers[i % len(workers)]], allow_other_workers=True
        )
        for i, chunk in enumerate(computed)
    ]
    return da.concatenate(
        [
            da.from_delayed(future, shape=(rows, x.shape[1]), dtype=x.dtype)
            for future, rows in zip(placed, x.chunks[0], strict=True)
        ]
    )


def feature_matrix(
    client: Client, path: Path, schema: FeatureSchema, *, partition_size: int, labelled: bool
) -> tuple[da.Array, np.ndarray, np.ndarray | None]:
    """The features of a features-stage file, in row chunks spread over the workers, and its
    keys (and labels) here: one number per applicant each.

    A chunk holds ``partition_size`` rows, or fewer, so that every worker gets some.
    """
    frame = read_frame(path, columns=[KEY, *([TARGET] if labelled else []), *schema.features])
    known = frame[[KEY, TARGET] if labelled else [KEY]].compute()
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    rows = max(1, min(partition_size, -(-len(known) // workers)))
    x = frame[list(schema.features)].to_dask_array(lengths=True).rechunk((rows, -1))
    labels = known[TARGET].to_numpy() if labelled else None
    return spread_rows(client, x), known[KEY].to_numpy(), labels


def train_on_cluster(
    client: Client,
    train: Path,
    *,
    schema: FeatureSchema,
    model: Mapping[str, Any],
    partition_size: int,
) -> tuple[np.ndarray, np.ndarray, Trained]:
    """The training protocol on the development applicants of ``train``, data-parallel.

    Returns their keys and labels (in the file's order, which the folds follow) and what
    :func:`~credit_scoring.modelling.cross_validation.train_with` yields. Each fit uses every
    thread of each worker: lightgbm.dask sets ``num_threads`` to the worker's own.
    """
    x, ids, y = feature_matrix(client, train, schema, partition_size=partition_size, labelled=True)
    y_chunks = da.from_array(y, chunks=(x.chunks[0],))
    params = booster_params(model, schema.features, threads=1)
    del params["num_threads"]  # lightgbm.dask sets each worker's own
    learner = OnCluster(client, x, y_chunks, schema.features, schema.categorical_indices, params)
    return ids, y, train_with(learner, y, model)
