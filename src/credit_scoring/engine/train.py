"""The train stage on Dask: the local protocol, each fit data-parallel across the workers.

The folds, the pooled rounds, the refits, the calibration and the final fit are the local
engine's (:func:`~credit_scoring.modelling.cross_validation.train_with`); only the
:class:`~credit_scoring.modelling.cross_validation.Learner` differs. Each worker holds one
contiguous share of the development rows (:func:`spread`), and every fit is one LightGBM
training across the workers (``tree_learner=data``), rank k on share k, the workers ranked by
name.

A data-parallel model depends on which rows each rank holds (each rank finds the bins of some
features on its own rows), so that order is fixed here, on LightGBM's own network parameters,
rather than left to ``lightgbm.dask``: it ranks the workers, and orders the parts each one
concatenates, in the order Dask happens to report them, and three runs on the same data gave
three models. Fixed, a fit is the same bits from run to run.

LightGBM does not stop a distributed fit early by itself in a way every worker agrees on
(``lightgbm.dask`` hangs or fails: LightGBM issues 3712, 4189, 6351). :meth:`OnCluster.stop_early`
fits in blocks of ``patience`` rounds instead, each block continuing the last (``init_model``),
and replays LightGBM's own rule (:func:`replay_early_stopping`) on the record of the stop rows'
metrics by round. Each rank can only evaluate the stop rows it holds, so it keeps their
probabilities of every round (:class:`StopScores`) and :func:`stop_record` computes the AUC and
log loss of all the stop rows together: the record one process would keep. Each block draws its
bagging and feature samples from seeds of its own, as a single fit would go on drawing new ones
rather than repeat the first block's.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dask.array as da
import lightgbm as lgb
import numpy as np
from distributed import Client, Future
from sklearn.metrics import log_loss, roc_auc_score

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.engine.frames import read_frame
from credit_scoring.errors import ClusterError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import Trained, booster_params, train_with

STOP = "stop"  # the name of the early-stopping rows in LightGBM's evaluation record


@dataclass(frozen=True)
class Share:
    """Rows ``start`` to ``stop`` of a matrix, as one array that ``worker`` holds."""

    worker: str
    start: int
    stop: int
    rows: Future


@dataclass(frozen=True)
class Spread:
    """A feature matrix over the workers: one share each, in rank order, covering every row."""

    shares: tuple[Share, ...]

    def split(self, rows: np.ndarray | None) -> list[np.ndarray]:
        """Sorted row positions (None: all) as positions within each share, in rank order."""
        if rows is None:
            return [np.arange(s.stop - s.start) for s in self.shares]
        cut = np.searchsorted(rows, [s.start for s in self.shares] + [self.shares[-1].stop])
        return [rows[cut[k] : cut[k + 1]] - s.start for k, s in enumerate(self.shares)]


def ranked_workers(client: Client) -> list[str]:
    """The workers' addresses ordered by name (a LocalCluster names them 0, 1, ...), then by
    address: the same order on every run, where addresses take random ports."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(workers, key=lambda address: (str(workers[address].get("name")), address))


def spread(client: Client, x: da.Array) -> Spread:
    """``x`` computed, its row chunks joined into one share per worker, in order.

    Shares are runs of whole chunks, as even in chunks as they can be, each placed on its worker.
    Every fit binds rank k to the k-th worker, so a worker lost during the stage stops it
    (:func:`~credit_scoring.engine.cluster.connect` names it) rather than let another rank order
    give another model.
    """
    workers = ranked_workers(client)
    chunks = client.compute(list(x.to_delayed().ravel()))
    bounds = np.cumsum([0, *x.chunks[0]])
    shares = []
    for worker, run in zip(
        workers, np.array_split(np.arange(len(chunks)), len(workers)), strict=True
    ):
        if run.size:
            rows = client.submit(
                _stack, *(chunks[i] for i in run), workers=[worker], allow_other_workers=True
            )
            shares.append(Share(worker, int(bounds[run[0]]), int(bounds[run[-1] + 1]), rows))
    return Spread(tuple(shares))


def _stack(*chunks: np.ndarray) -> np.ndarray:
    return np.concatenate(chunks)


def _free_port() -> int:
    """A port free on the worker that runs this, for LightGBM to listen on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("", 0))
        return int(listener.getsockname()[1])


class StopScores:
    """A LightGBM evaluation function that keeps the stop rows' probabilities, round by round."""

    def __init__(self) -> None:
        self.rounds: list[np.ndarray] = []

    def __call__(self, preds: np.ndarray, data: lgb.Dataset) -> tuple[str, float, bool]:
        self.rounds.append(np.array(preds, dtype="float64"))
        return "kept", 0.0, True


def _fit_share(
    x: np.ndarray,
    y: np.ndarray,
    fit: np.ndarray,
    stop: np.ndarray,
    *,
    params: Mapping[str, Any],
    features: Sequence[str],
    categorical: Sequence[int],
    rounds: int,
    init_model: str | None,
    keep: bool,
) -> tuple[str | None, np.ndarray]:
    """One rank's side of a data-parallel fit, on the worker holding its share.

    Returns the model (from the rank that ``keep``s it), and this rank's stop rows'
    probabilities, one row per round.
    """
    names, categorical = list(features), list(categorical)
    train = lgb.Dataset(x[fit], label=y[fit], feature_name=names, categorical_feature=categorical)
    valid = [lgb.Dataset(x[stop], label=y[stop], reference=train)] if stop.size else []
    scores = StopScores()
    booster = lgb.train(
        dict(params),  # lgb.train writes the network parameters into it
        train,
        num_boost_round=rounds,
        init_model=None if init_model is None else lgb.Booster(model_str=init_model),
        valid_sets=valid,
        valid_names=[STOP] * len(valid),
        feval=scores if valid else None,
    )
    booster.free_network()
    model = _without_ports(booster.model_to_string()) if keep else None
    return model, np.array(scores.rounds).reshape(rounds, stop.size)


def _block_seeds(seed: int, block: int) -> dict[str, int]:
    """The bagging and feature-sampling seeds of an early stopping's ``block``-th fit: the
    model's own for the first, new ones after, so that no block repeats the first's draws."""
    return (
        {} if block == 0 else {"bagging_seed": seed + block, "feature_fraction_seed": seed + block}
    )


def _without_ports(model: str) -> str:
    """A model's text without the ports its fit listened on, which change with every fit and
    are no part of the model: its text, the DVC output, then repeats bit for bit."""
    return "\n".join(
        line
        for line in model.split("\n")
        if not line.startswith(("[machines: ", "[local_listen_port: "))
    )


def _predict_share(x: np.ndarray, rows: np.ndarray, model: str, threads: int) -> np.ndarray:
    return lgb.Booster(model_str=model).predict(x[rows], num_threads=threads)


def stop_record(y: np.ndarray, scores: Sequence[np.ndarray]) -> dict[str, list[float]]:
    """The AUC and log loss by round of all the stop rows, from each rank's probabilities
    (rounds by rows, in rank order) and the stop rows' labels ``y`` in the same order."""
    joined = np.concatenate(scores, axis=1)
    return {
        "auc": [float(roc_auc_score(y, p)) for p in joined],
        "binary_logloss": [float(log_loss(y, p, labels=[0, 1])) for p in joined],
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
    """The Dask engine's :class:`~credit_scoring.modelling.cross_validation.Learner`: the
    development rows spread over the workers, their labels here."""

    client: Client
    x: Spread
    y: np.ndarray
    features: Sequence[str]
    categorical: Sequence[int]
    params: Mapping[str, Any]

    def _fit(
        self,
        rows: np.ndarray | None,
        rounds: int,
        stop: np.ndarray | None = None,
        init_model: lgb.Booster | None = None,
        block: int = 0,
    ) -> tuple[lgb.Booster, list[np.ndarray]]:
        """One data-parallel fit (the ``block``-th of an early stopping); the model, and each
        rank's stop rows' probabilities by round."""
        shares, fits = self.x.shares, self.x.split(rows)
        stops = self.x.split(stop) if stop is not None else [np.arange(0)] * len(shares)
        if any(not fit.size for fit in fits):
            raise ClusterError(
                f"a worker holds none of the {sum(f.size for f in fits)} rows of a fit; use"
                " fewer workers or more applicants"
            )
        client, threads = self.client, self.client.ncores()
        ports = client.gather(
            [client.submit(_free_port, workers=[s.worker], pure=False) for s in shares]
        )
        machines = ",".join(
            f"{urlparse(s.worker).hostname}:{port}" for s, port in zip(shares, ports, strict=True)
        )
        model = None if init_model is None else init_model.model_to_string()
        futures = [
            client.submit(
                _fit_share,
                share.rows,
                self.y[share.start : share.stop],
                fit,
                stop_rows,
                params={
                    **self.params,
                    **_block_seeds(self.params["seed"], block),
                    "tree_learner": "data",
                    "num_machines": len(shares),
                    "machines": machines,
                    "local_listen_port": port,
                    "num_threads": threads[share.worker],
                },
                features=self.features,
                categorical=self.categorical,
                rounds=rounds,
                init_model=model,
                keep=rank == 0,
                workers=[share.worker],
                allow_other_workers=False,
                pure=False,
            )
            for rank, (share, fit, stop_rows, port) in enumerate(
                zip(shares, fits, stops, ports, strict=True)
            )
        ]
        results = client.gather(futures)
        return lgb.Booster(model_str=results[0][0]), [scores for _, scores in results]

    def stop_early(
        self, fit: np.ndarray, stop: np.ndarray, *, max_rounds: int, patience: int
    ) -> tuple[int, Mapping[str, Sequence[float]]]:
        record: dict[str, list[float]] = {}
        booster, block = None, 0
        while True:
            rounds = min(patience, max_rounds - len(record.get("auc", ())))
            booster, scores = self._fit(fit, rounds, stop, booster, block)
            for metric, values in stop_record(self.y[stop], scores).items():
                record.setdefault(metric, []).extend(values)
            block += 1
            best, length, stopped = replay_early_stopping(record["auc"], patience)
            if stopped or length >= max_rounds:
                return best, {metric: values[:length] for metric, values in record.items()}

    def fit(self, rows: np.ndarray | None, rounds: int) -> lgb.Booster:
        return self._fit(rows, rounds)[0]

    def predict(self, booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
        return predict_rows(self.client, booster, self.x, rows)


def predict_rows(
    client: Client, booster: lgb.Booster, x: Spread, rows: np.ndarray | None = None
) -> np.ndarray:
    """The model's probabilities for sorted ``rows`` of ``x`` (None: all), each share scored
    on its worker."""
    model, threads = booster.model_to_string(), client.ncores()
    futures = [
        client.submit(_predict_share, share.rows, local, model, threads[share.worker])
        for share, local in zip(x.shares, x.split(rows), strict=True)
    ]
    return np.concatenate(client.gather(futures))


def feature_matrix(
    client: Client, path: Path, schema: FeatureSchema, *, partition_size: int, labelled: bool
) -> tuple[Spread, np.ndarray, np.ndarray | None]:
    """The features of a features-stage file, spread over the workers, and its keys (and
    labels) here: one number per applicant each.

    A chunk holds ``partition_size`` rows, or fewer, so that every worker gets some.
    """
    frame = read_frame(path, columns=[KEY, *([TARGET] if labelled else []), *schema.features])
    known = frame[[KEY, TARGET] if labelled else [KEY]].compute()
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    rows = max(1, min(partition_size, -(-len(known) // workers)))
    x = frame[list(schema.features)].to_dask_array(lengths=True).rechunk((rows, -1))
    labels = known[TARGET].to_numpy() if labelled else None
    return spread(client, x), known[KEY].to_numpy(), labels


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
    thread of each worker.
    """
    x, ids, y = feature_matrix(client, train, schema, partition_size=partition_size, labelled=True)
    params = booster_params(model, schema.features, threads=1)  # each worker's own, in _fit
    learner = OnCluster(client, x, y, schema.features, schema.categorical_indices, params)
    return ids, y, train_with(learner, y, model)
