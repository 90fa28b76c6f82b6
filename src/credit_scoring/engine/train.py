"""The train stage on Dask: the local protocol, each fit data-parallel across the workers.

The folds, the pooled rounds, the refits, the calibration and the final fit are the local
engine's (:func:`~credit_scoring.modelling.cross_validation.train_with`); only the
:class:`~credit_scoring.modelling.cross_validation.Learner` differs. Each worker holds one
contiguous share of the development rows (:func:`spread`), and every fit is one LightGBM
training across the workers (``tree_learner=data``), rank k on share k, the workers ranked by
name.

A data-parallel fit is made to draw what the local fit draws, so that the two engines give
nearly the same model (:meth:`OnCluster._fit`):

* the same bins: LightGBM would find each feature's bins on one rank's rows; here one worker
  finds them on all of a fit's rows, as the local engine does (on a sample past
  :data:`BIN_SAMPLE_ROWS`), and every rank bins its rows with that reference;
* the same bags: LightGBM draws row i's bagging from ``Random(bagging_seed + i // 1024)``, so
  each rank trains on a run of the fit's rows that starts at a multiple of 1,024 (a few rows
  cross from one worker to the next) and shifts its ``bagging_seed`` by that many blocks;
* the same order of ranks: rank k is the k-th worker by name, on a fixed run of rows, where
  ``lightgbm.dask`` ranks the workers, and orders the parts each one concatenates, in the order
  Dask happens to report them (three runs on the same data gave three models there). A fit is
  the same bits from run to run.

Two differences are left, so the model is nearly, not exactly, the local one: the ranks'
histograms are summed in another order (the last bits of a gain, enough to tip a close split),
and LightGBM starts a distributed fit from the mean of the ranks' average log-odds rather than
from the average log-odds of all the rows. With one worker, a fit is the local one bit for bit.

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

import hashlib
import itertools
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dask.array as da
import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
from distributed import Client, Future, wait
from sklearn.metrics import log_loss, roc_auc_score

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.engine.frames import read_matrix
from credit_scoring.errors import ClusterError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import Curve, Trained, booster_params, train_with

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


BAGGING_BLOCK = 1024  # LightGBM's bagging_rand_block_: rows 1024 b to 1024 b + 1023 draw together
NETWORK = ("tree_learner", "num_machines", "machines", "local_listen_port")
# At most this many of a fit's rows go to the one worker that finds its bins: 0.3 GB at 716
# features, where LightGBM's own 200,000-row sample took a worker past the local engine's peak.
BIN_SAMPLE_ROWS = 50_000


def aligned_runs(counts: Sequence[int], block: int = BAGGING_BLOCK) -> list[tuple[int, int]]:
    """Each rank's run of a fit's rows, given how many each worker holds (in rank order).

    Every run but the first starts at the multiple of ``block`` at or before the start of its
    worker's rows, so the runs cover the rows in order and rank k's row j is the fit's row
    ``start + j``: its bagging draws are the local fit's once its seed moves ``start // block``.
    """
    bounds = np.cumsum([0, *counts])
    starts = [0, *((int(b) // block) * block for b in bounds[1:-1]), int(bounds[-1])]
    return list(itertools.pairwise(starts))


def lightgbm_bagging_seed(params: Mapping[str, Any]) -> int:
    """The bagging seed LightGBM uses for ``params``: its own, or the one it derives from
    ``seed``, read back from a model of two rows."""
    if "bagging_seed" in params:
        return int(params["bagging_seed"])
    tiny = lgb.Dataset(np.array([[0.0], [1.0]]), label=[0.0, 1.0])
    booster = lgb.Booster({"seed": params["seed"], "objective": "binary", "verbosity": -1}, tiny)
    return int(re.search(r"^\[bagging_seed: (\d+)\]$", booster.model_to_string(), re.M)[1])


def _take(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return x[rows]


def _local(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in NETWORK}


def _bins(
    *parts: np.ndarray,
    params: Mapping[str, Any],
    features: Sequence[str],
    categorical: Sequence[int],
) -> bytes:
    """The bins (and feature bundles) LightGBM finds on ``parts`` in one process, as the bytes
    of a one-row binary dataset that any rank loads as its reference."""
    found = lgb.Dataset(
        np.concatenate(parts),
        feature_name=list(features),
        categorical_feature=list(categorical),
        params=_local(params),
    ).construct()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bins.bin"
        found.subset([0]).construct().save_binary(str(path))
        return path.read_bytes()


def _reference(bins: bytes, params: Mapping[str, Any]) -> lgb.Dataset:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bins.bin"
        path.write_bytes(bins)
        return lgb.Dataset(str(path), params=_local(params)).construct()


def _fit_share(
    fit: Sequence[np.ndarray],
    y: np.ndarray,
    stop: Sequence[np.ndarray],
    stop_y: np.ndarray,
    bins: bytes,
    *,
    params: Mapping[str, Any],
    features: Sequence[str],
    categorical: Sequence[int],
    rounds: int,
    init_model: str | None,
    keep: bool,
) -> tuple[str | None, np.ndarray]:
    """One rank's side of a data-parallel fit: its run of the fit's rows (``fit``, pieces in
    order, labels ``y``), binned as ``bins`` says, and the stop rows it scores (``stop``,
    labels ``stop_y``).

    Returns the model (from the rank that ``keep``s it), and this rank's stop rows'
    probabilities, one row per round.
    """
    train = lgb.Dataset(
        np.concatenate(fit),
        label=y,
        feature_name=list(features),
        categorical_feature=list(categorical),
        reference=_reference(bins, params),
    )
    valid = [lgb.Dataset(np.concatenate(stop), label=stop_y, reference=train)] if stop else []
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
    model = booster.model_to_string() if keep else None
    return model, np.array(scores.rounds).reshape(rounds, stop_y.size)


def _block_seeds(seed: int, block: int) -> dict[str, int]:
    """The bagging and feature-sampling seeds of an early stopping's ``block``-th fit: the
    model's own for the first, new ones after, so that no block repeats the first's draws."""
    return (
        {} if block == 0 else {"bagging_seed": seed + block, "feature_fraction_seed": seed + block}
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
    # The last fit's rows and its bins' future: the blocks of an early stopping share them.
    _bins: dict[bytes, Future] = field(default_factory=dict, compare=False, repr=False)

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
        client, shares, fits = self.client, self.x.shares, self.x.split(rows)
        stops = self.x.split(stop) if stop is not None else [np.arange(0)] * len(shares)
        runs = aligned_runs([fit.size for fit in fits])
        # The workers that train: those whose run is not empty. A fit too small to give each
        # worker a run of its own (under 1,024 rows a worker) runs on fewer of them.
        ranks = [k for k, (start, end) in enumerate(runs) if start < end]
        if not ranks:
            raise ClusterError("a fit of no rows: the development set is empty")
        # Each rank scores the stop rows of its own share and of the idle shares after it.
        bounds = [0, *ranks[1:], len(shares)]
        scored = [range(a, b) for a, b in itertools.pairwise(bounds)]
        bins = self._bins_of(rows, fits, shares[ranks[0]].worker)
        ordered = np.concatenate(
            [fit + share.start for share, fit in zip(shares, fits, strict=True)]
        )
        seeds = {**self.params, **_block_seeds(self.params["seed"], block)}
        bagging = lightgbm_bagging_seed(seeds)
        threads = client.ncores()
        workers = [shares[k].worker for k in ranks]
        ports = client.gather(
            [client.submit(_free_port, workers=[worker], pure=False) for worker in workers]
        )
        machines = ",".join(
            f"{urlparse(worker).hostname}:{port}"
            for worker, port in zip(workers, ports, strict=True)
        )
        model = None if init_model is None else init_model.model_to_string()
        # Every rank's rows, moved and ready, before any rank starts: a rank blocks its worker
        # until all the ranks have joined, so a piece still to be cut on that worker for another
        # rank would never be cut.
        train = [self._pieces(fits, np.arange(*runs[k])) for k in ranks]
        scoring = [
            [
                client.submit(_take, shares[j].rows, stops[j], workers=[shares[j].worker])
                for j in own
                if stops[j].size
            ]
            for own in scored
        ]
        wait([bins, *itertools.chain(*train, *scoring)])
        futures = [
            client.submit(
                _fit_share,
                train[rank],
                self.y[ordered[runs[k][0] : runs[k][1]]],
                scoring[rank],
                self.y[np.concatenate([shares[j].start + stops[j] for j in own])],
                bins,
                params={
                    **seeds,
                    "bagging_seed": bagging + runs[k][0] // BAGGING_BLOCK,
                    "tree_learner": "data",
                    "num_machines": len(ranks),
                    "machines": machines,
                    "local_listen_port": port,
                    "num_threads": threads[worker],
                },
                features=self.features,
                categorical=self.categorical,
                rounds=rounds,
                init_model=model,
                keep=rank == 0,
                workers=[worker],
                allow_other_workers=False,
                pure=False,
            )
            for rank, (k, worker, port, own) in enumerate(
                zip(ranks, workers, ports, scored, strict=True)
            )
        ]
        results = client.gather(futures)
        return lgb.Booster(model_str=results[0][0]), [scores for _, scores in results]

    def _bins_of(self, rows: np.ndarray | None, fits: Sequence[np.ndarray], worker: str) -> Future:
        """The bins of a fit's rows, found on ``worker``, once for all the fits on those rows."""
        key = b"all" if rows is None else hashlib.sha256(rows.tobytes()).digest()
        if key not in self._bins:
            self._bins.clear()
            self._bins[key] = self.client.submit(
                _bins,
                *self._pieces(fits, self._bin_sample(sum(fit.size for fit in fits))),
                params=self.params,
                features=self.features,
                categorical=self.categorical,
                workers=[worker],
                pure=False,
            )
        return self._bins[key]

    def _pieces(self, fits: Sequence[np.ndarray], wanted: np.ndarray) -> list[Future]:
        """The fit's rows at sorted positions ``wanted`` (in the fit's order, across the
        shares' ``fits``), as one piece per share that holds some, in order."""
        bounds = np.cumsum([0, *(fit.size for fit in fits)])
        cut = np.searchsorted(wanted, bounds)
        return [
            self.client.submit(_take, share.rows, fit[wanted[a:b] - low], workers=[share.worker])
            for share, fit, low, a, b in zip(
                self.x.shares, fits, bounds[:-1], cut[:-1], cut[1:], strict=True
            )
            if a < b
        ]

    def _bin_sample(self, rows: int) -> np.ndarray:
        """The fit's rows that bins are found on: all of them up to :data:`BIN_SAMPLE_ROWS`,
        as the local engine does; past it, a seeded sample of that many, so that the worker
        finding them holds little (the local engine samples up to LightGBM's
        ``bin_construct_sample_cnt``, 200,000, so a few bins may differ on large fits)."""
        if rows <= BIN_SAMPLE_ROWS:
            return np.arange(rows)
        rng = np.random.default_rng(self.params["seed"])
        return np.sort(rng.choice(rows, size=BIN_SAMPLE_ROWS, replace=False))

    def stop_early(
        self, fit: np.ndarray, stop: np.ndarray, *, max_rounds: int, patience: int
    ) -> tuple[int, Curve]:
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

    def stop_early_each(
        self, splits: Sequence[tuple[np.ndarray, np.ndarray]], *, max_rounds: int, patience: int
    ) -> list[tuple[int, Curve]]:
        """One split after another: each fit already takes every worker."""
        return [
            self.stop_early(fit, stop, max_rounds=max_rounds, patience=patience)
            for fit, stop in splits
        ]

    def fit(self, rows: np.ndarray | None, rounds: int) -> lgb.Booster:
        return self._fit(rows, rounds)[0]

    def fit_each(self, rows: Sequence[np.ndarray | None], rounds: int) -> list[lgb.Booster]:
        return [self.fit(some, rounds) for some in rows]

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
    known = pq.read_table(path, columns=[KEY, TARGET] if labelled else [KEY])
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    rows = max(1, min(partition_size, -(-known.num_rows // workers)))
    x = read_matrix(path, schema.features).rechunk((rows, -1))
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
