"""The thread rule: LightGBM never gets more threads than the cores a process is given, whether
by its CPU affinity, a configured override or a Dask worker's threads, and the thread count
never changes a model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from scipy import special

from credit_scoring.cores import Share, available_cores
from credit_scoring.engine.cluster import ClusterSpec, connect
from credit_scoring.engine.train import OnCluster, spread
from credit_scoring.errors import ConfigError
from credit_scoring.modelling.cross_validation import (
    InMemory,
    cross_validate,
    lightgbm_params,
    model_text,
)

ONE_CORE = {0}


def on_one_core(code: str) -> str:
    """What ``code`` prints in a Python process pinned to one core."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: os.sched_setaffinity(0, ONE_CORE),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_a_process_pinned_to_one_core_trains_one_fit_at_a_time_on_one_thread():
    shown = on_one_core(
        "from credit_scoring.cores import Share, available_cores;"
        "c = available_cores(); s = Share.of(c, 5); print(c, s.jobs, s.threads)"
    )
    assert shown == "1 1 1"


def test_the_cores_are_shared_without_oversubscription():
    assert Share.of(2, 5) == Share(jobs=2, threads=1)
    assert Share.of(8, 5) == Share(jobs=5, threads=1)
    assert Share.of(8, 1) == Share(jobs=1, threads=8)
    assert Share.of(16, 6) == Share(jobs=6, threads=2)
    for cores in range(1, 17):
        for fits in range(1, 9):
            share = Share.of(cores, fits)
            assert share.jobs * share.threads <= max(cores, 1)
            assert share.jobs <= fits


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_a_bad_threads_override_is_refused(bad):
    with pytest.raises(ConfigError, match="threads"):
        available_cores(bad)


def test_an_override_takes_the_place_of_the_machines_cores():
    assert available_cores(3) == 3
    assert available_cores() == len(os.sched_getaffinity(0))


def test_the_thread_count_never_changes_the_model():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 8))
    y = (rng.random(3000) < special.expit(x[:, 0] - 2)).astype("int64")
    features = [f"f{i}" for i in range(8)]
    params = {"learning_rate": 0.1, "num_leaves": 15, "feature_fraction": 0.5}
    texts = {
        model_text(InMemory(x, y, features, [], lightgbm_params(params, 3, threads)).fit(None, 40))
        for threads in (1, 2, 4)
    }
    assert len(texts) == 1
    assert "[num_threads: " not in texts.pop()
    # Folds in two processes of one thread give the out-of-fold scores of one process.
    common = {
        "features": features,
        "categorical": [],
        "params": params,
        "n_folds": 3,
        "stop_share": 0.2,
        "seed": 3,
        "max_rounds": 100,
        "early_stopping_rounds": 10,
    }
    np.testing.assert_array_equal(
        cross_validate(x, y, cores=1, **common).oof, cross_validate(x, y, cores=2, **common).oof
    )


def test_the_train_stage_says_how_it_shares_the_cores(packaged, tmp_path):
    work = packaged["work"]
    shutil.copy(work / "params.yaml", tmp_path)
    shutil.copytree(work / "data" / "features", tmp_path / "data" / "features")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.train"],
        cwd=tmp_path,
        env={**packaged["env"]},
        preexec_fn=lambda: os.sched_setaffinity(0, ONE_CORE),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LightGBM on 1 core(s): 1 fit(s) at a time, 1 thread(s) each" in done.stderr


def test_a_local_cluster_never_has_more_threads_than_cores(caplog):
    spec = ClusterSpec.from_params(
        {
            "name": "dask",
            "address": "",
            "n_workers": 2,
            "threads_per_worker": 4,
            "memory_limit": "1GiB",
            "timeout": 60,
            "partition_size": 1000,
        }
    )
    assert spec.local_threads(cores=2) == 1
    assert spec.local_threads(cores=16) == 4
    assert spec.local_threads(cores=1) == 1  # never below one thread
    cores = available_cores()
    with connect(spec) as client:
        threads = client.ncores()
    assert len(threads) == 2
    assert sum(threads.values()) <= max(cores, 2)
    assert set(threads.values()) == {spec.local_threads(cores)}
    assert f"each worker gets {spec.local_threads(cores)} thread(s)" in caplog.text


@pytest.mark.parametrize("threads", [1, 2])
def test_a_dask_worker_fits_with_the_threads_it_has(threads):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 4))
    y = (rng.random(2000) < special.expit(x[:, 0] - 2)).astype("int64")
    features = [f"f{i}" for i in range(4)]
    params = lightgbm_params({"learning_rate": 0.1}, 3, threads=1)  # the worker's, in each fit
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=threads, dashboard_address=":0", processes=True
        ) as cluster,
        Client(cluster) as client,
    ):
        learner = OnCluster(
            client, spread(client, da.from_array(x, chunks=(1000, -1))), y, features, [], params
        )
        booster = learner.fit(None, 10)
    assert f"[num_threads: {threads}]" in booster.model_to_string()
    local = InMemory(x, y, features, [], params).fit(None, 10)
    assert model_text(booster) == model_text(local)  # one worker: the local model, any threads
