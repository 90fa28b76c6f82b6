"""engine=dask: the local engine's results on a real two-worker cluster, its failures in a line.

The stages run twice on the same small synthetic tables, once per engine, and what they write
is compared: the aggregates and features value for value, the model by its out-of-fold AUC
(data-parallel LightGBM bins and bags each worker's rows, so it is another fit, not the same),
and a second run of the cluster's training by its bytes. Each bad configuration is run as DVC
runs a stage, in a subprocess: one line, exit code 1, the previous output left alone. The last
test runs `dvc exp run -S engine=dask` end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dask.array as da
import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from distributed import Client
from sklearn.metrics import log_loss

from conftest import ROOT
from credit_scoring.atomic import write_tables
from credit_scoring.config import compose_params
from credit_scoring.engine.cluster import ClusterSpec
from credit_scoring.engine.frames import applicant_divisions, read_frame, read_matrix
from credit_scoring.engine.train import (
    OnCluster,
    aligned_runs,
    lightgbm_bagging_seed,
    replay_early_stopping,
    spread,
    stop_record,
)
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.cross_validation import InMemory, lightgbm_params
from credit_scoring.sources.synthetic import generate
from tests.support.cluster import KillOnTask, local_cluster, worker_with_versions
from tests.support.servers import free_port
from tests.support.stages import run_stage, write_params

SIZE = 400  # applicants per partition: about ten partitions of the small tables
DASK = ["engine=dask", f"engine.partition_size={SIZE}", "engine.timeout=20"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-worker LocalCluster shared by the stages that should succeed; its address."""
    with local_cluster() as running:
        yield running.scheduler_address


def prepare(work: Path, synthetic: dict[str, pd.DataFrame], overrides: list[str]) -> Path:
    """A stage folder: the small raw tables and params composed with ``overrides``."""
    write_tables(synthetic, work / "data" / "raw")
    write_params(work, ["model=fast", *overrides])
    return work


@pytest.fixture(scope="module")
def runs(synthetic, cluster, tmp_path_factory) -> dict[str, Path]:
    """aggregate and features with each engine, on the same tables."""
    folders = {
        "local": prepare(tmp_path_factory.mktemp("local"), synthetic, []),
        "dask": prepare(
            tmp_path_factory.mktemp("dask"), synthetic, [*DASK, f"engine.address={cluster}"]
        ),
    }
    for work in folders.values():
        for stage in ("aggregate", "features"):
            run_stage(stage, work)
    return folders


@pytest.fixture(scope="module")
def trained(cluster, tmp_path_factory) -> dict[str, Path]:
    """train with each engine on the same features: 30,000 applicants, application fields only.

    Data-parallel LightGBM finds bins on one worker's rows and bags each worker's own, so its
    fit is another fit of the same model: on the small tables the two out-of-fold AUCs differ
    by as much as the draws of the folds and samples move either (docs/benchmarks.md); here,
    by under 0.005.
    """
    tables = generate(n_train=30_000, n_test=500, seed=7)
    applications = {name: tables[name] for name in ("application_train", "application_test")}
    application_only = ["aggregate.groups=[]", "model/monotone=application"]
    local = prepare(tmp_path_factory.mktemp("local"), applications, application_only)
    for stage in ("aggregate", "features"):
        run_stage(stage, local)
    dask_ = tmp_path_factory.mktemp("dask")
    shutil.copytree(local / "data", dask_ / "data")
    write_params(dask_, ["model=fast", *application_only, *DASK, f"engine.address={cluster}"])
    folders = {"local": local, "dask": dask_}
    for work in folders.values():
        run_stage("train", work)
    return folders


def outputs(work: Path, section: str, *keys: str) -> list[Path]:
    params = yaml.safe_load((work / "params.yaml").read_text())
    return [work / params[section][key] for key in keys]


def test_aggregates_are_the_local_engines(runs):
    local, dask_ = (pd.read_parquet(outputs(runs[e], "aggregate", "out")[0]) for e in runs)
    assert len(local) > 3000 and local.shape[1] > 500
    pd.testing.assert_frame_equal(dask_, local, check_exact=True)


@pytest.mark.parametrize("output", ["train", "holdout", "test", "schema"])
def test_features_are_the_local_engines(runs, output):
    local, dask_ = (outputs(runs[e], "features", output)[0] for e in runs)
    if output == "schema":
        assert dask_.read_text() == local.read_text()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(dask_), pd.read_parquet(local))


def test_training_is_data_parallel_and_as_good(trained):
    metrics = {
        engine: json.loads((work / "dvclive" / "train" / "metrics.json").read_text())
        for engine, work in trained.items()
    }
    assert abs(metrics["dask"]["oof_auc"] - metrics["local"]["oof_auc"]) < 0.005, metrics
    oof = {e: pd.read_parquet(outputs(w, "train", "oof")[0]) for e, w in trained.items()}
    for column in ("SK_ID_CURR", "TARGET", "fold"):  # the same applicants in the same folds
        pd.testing.assert_series_equal(oof["dask"][column], oof["local"][column])
    model = outputs(trained["dask"], "train", "model")[0]
    assert "[num_machines: 2]" in model.read_text()  # one fit across both workers
    booster = lgb.Booster(model_file=str(model))  # a normal LightGBM text model
    folds = json.loads(outputs(trained["dask"], "train", "folds")[0].read_text())
    assert booster.current_iteration() == folds["rounds"]


def test_the_features_files_come_in_row_groups(trained):
    """Whichever engine wrote them, the cluster reads a features file by row group, never whole
    in one task: the local engine writes ``features.row_group_size`` rows a group too."""
    train = outputs(trained["local"], "features", "train")[0]
    size = yaml.safe_load((trained["local"] / "params.yaml").read_text())["features"]
    groups = pq.ParquetFile(train).metadata
    assert groups.num_rows == 24_000 and size["row_group_size"] == 20_000
    assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [20_000, 4_000]


def test_the_cluster_reads_a_file_one_row_group_at_a_time(trained):
    """Dask on its own reads a file under 256 MiB on disk, as is every Kaggle table, as one
    partition: one worker would hold the whole table. A frame has a partition per row group,
    a matrix a chunk per row group, with the file's values."""
    train, schema = outputs(trained["local"], "features", "train", "schema")
    features = list(FeatureSchema.from_json(schema.read_text()).features)
    assert read_frame(train, columns=features).npartitions == 2
    x = read_matrix(train, features)
    assert x.chunks[0] == (20_000, 4_000)
    expected = pd.read_parquet(train, columns=features).to_numpy(dtype="float64")
    np.testing.assert_array_equal(x.compute(scheduler="sync"), expected)


def test_training_on_the_cluster_repeats_bit_for_bit(trained, tmp_path):
    """Rank k trains on share k, whatever order Dask reports the workers in: the same model,
    the DVC output, from a second run (lightgbm.dask's own ordering gave three models in three)."""
    again = tmp_path / "again"
    shutil.copytree(trained["dask"], again)
    run_stage("train", again)
    for output in outputs(trained["dask"], "train", "model", "oof", "holdout"):
        relative = output.relative_to(trained["dask"])
        assert (again / relative).read_bytes() == output.read_bytes(), relative


def test_the_engine_group_composes_into_a_spec():
    assert ClusterSpec.from_params(yaml.safe_load(compose_params(ROOT / "conf"))["engine"]) is None
    engine = yaml.safe_load(compose_params(ROOT / "conf", DASK))["engine"]
    spec = ClusterSpec.from_params(engine)
    assert (spec.address, spec.n_workers, spec.partition_size) == ("", 2, SIZE)


def test_divisions_put_partition_size_applicants_in_each_partition():
    keys = np.array([5, 1, 3, 3, 9, 7, 2])  # 1 2 3 5 7 9: six applicants, one twice
    assert applicant_divisions(keys, 2) == [1, 3, 7, 9]
    assert applicant_divisions(keys, 5) == [1, 9]  # the last one joins the partition before
    assert applicant_divisions(np.array([4]), 3) == [4, 4]


def test_each_rank_trains_on_a_run_that_starts_at_a_bagging_block():
    """Rank k's row j is the fit's row start + j, start a multiple of 1,024: with its seed moved
    start // 1,024 blocks, it draws the local fit's bags. A few rows cross to the next rank."""
    assert aligned_runs([3000, 2500]) == [(0, 2048), (2048, 5500)]
    assert aligned_runs([4096, 10, 5000]) == [(0, 4096), (4096, 4096), (4096, 9106)]
    assert aligned_runs([7000]) == [(0, 7000)]


def test_the_bagging_seed_is_lightgbms_own():
    """LightGBM derives its seeds from ``seed`` with its LCG: data_random_seed first, then
    bagging_seed (worked out here by hand); an explicit one wins."""
    x, draws = 42, []
    for _ in range(2):
        x = (214013 * x + 2531011) % 2**32
        draws.append(((x >> 16) & 0x7FFF) % 32767)
    assert lightgbm_bagging_seed({"seed": 42}) == draws[1]
    assert lightgbm_bagging_seed({"seed": 42, "bagging_seed": 7}) == 7


def small_problem(rows: int) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (x[:, 0] + rng.normal(size=rows) > 1).astype("float64")
    params = lightgbm_params(
        {"num_leaves": 7, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.6},
        seed=5,
        threads=1,
    )
    return x, y, [f"f{i}" for i in range(5)], params


def test_one_worker_fits_the_local_model_bit_for_bit():
    """The shared bins and the bagging seed, with nothing to share: the local engine's trees."""
    x, y, features, params = small_problem(3000)
    rows = np.flatnonzero(np.arange(3000) % 7)
    local = InMemory(x, y, features, [], params).fit(rows, 20)
    with local_cluster(1) as running, Client(running) as client:
        learner = OnCluster(client, spread(client, da.from_array(x, chunks=(800, -1))), y,
                            features, [], params)  # fmt: skip
        cluster = learner.fit(rows, 20)
    assert cluster.dump_model()["tree_info"] == local.dump_model()["tree_info"]


def test_a_fit_too_small_to_share_runs_on_one_worker(cluster):
    """Under a bagging block a worker, the rows go to one worker: the local fit, and the local
    early stopping, though the stop rows lie on both workers."""
    x, y, features, params = small_problem(1500)
    rows = np.arange(1500)
    fit, stop = rows[rows % 4 != 0], rows[rows % 4 == 0]
    local = InMemory(x, y, features, [], params)
    with Client(cluster) as client:
        learner = OnCluster(client, spread(client, da.from_array(x, chunks=(750, -1))), y,
                            features, [], params)  # fmt: skip
        booster = learner.fit(fit, 15)
        best, curve = learner.stop_early(fit, stop, max_rounds=15, patience=15)
    assert booster.dump_model()["tree_info"] == local.fit(fit, 15).dump_model()["tree_info"]
    local_best, local_curve = local.stop_early(fit, stop, max_rounds=15, patience=15)
    assert best == local_best
    np.testing.assert_allclose(curve["auc"], local_curve["auc"], rtol=1e-9)


def test_the_stop_record_is_that_of_all_the_stop_rows():
    """Each rank scores its own stop rows; the AUC is of all of them together, which the mean of
    the ranks' AUCs is not (here each rank ranks its rows perfectly, the whole does not)."""
    y = np.array([0, 1, 0, 1])
    ranks = [np.array([[0.1, 0.2], [0.1, 0.9]]), np.array([[0.3, 0.4], [0.5, 0.6]])]  # 2 rounds
    record = stop_record(y, ranks)
    assert record["auc"] == [0.75, 1.0]
    np.testing.assert_allclose(
        record["binary_logloss"],
        [log_loss(y, [0.1, 0.2, 0.3, 0.4]), log_loss(y, [0.1, 0.9, 0.5, 0.6])],
    )


def test_early_stopping_replayed_as_lightgbm_stops():
    curve = [0.60, 0.70, 0.70, 0.65, 0.69, 0.71, 0.70, 0.70]
    assert replay_early_stopping(curve, patience=2) == (2, 4, True)  # the first of equal peaks
    assert replay_early_stopping(curve, patience=4) == (6, 8, False)  # ran out of record


# --- bad configuration: one line, exit 1, nothing half-written -----------------------------


def fails_cleanly(work: Path, stage: str, output: str, expected: str) -> None:
    """Run ``stage`` as DVC does over a previous ``output``, which must survive untouched."""
    out = work / output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("the last good output")
    done = run_stage(stage, work, in_process=False, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and expected in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    assert out.read_text() == "the last good output"


def test_an_unreachable_scheduler_is_named_with_the_timeout(synthetic, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    work = prepare(tmp_path, synthetic, [*DASK, f"engine.address={address}", "engine.timeout=2"])
    expected = f"cannot reach the Dask scheduler at {address} within 2 s (engine.timeout)"
    fails_cleanly(work, "aggregate", "data/interim/aggregates.parquet", expected)


def test_a_worker_dying_during_the_stage_stops_it(synthetic, tmp_path):
    """Workers killed as they start aggregating: after the allowed failures, one line."""
    with local_cluster(**{"distributed.scheduler.allowed-failures": 0}) as doomed:
        with Client(doomed) as client:
            client.register_plugin(KillOnTask("_aggregate_partition"))
        work = prepare(tmp_path, synthetic, [*DASK, f"engine.address={doomed.scheduler_address}"])
        expected = f"a worker of the Dask scheduler at {doomed.scheduler_address} died running"
        fails_cleanly(work, "aggregate", "data/interim/aggregates.parquet", expected)


def test_workers_with_other_package_versions_are_refused(synthetic, tmp_path):
    """A real worker process whose environment reports another LightGBM."""
    with local_cluster(workers=0) as empty:
        address = empty.scheduler_address
        with worker_with_versions(address, {"lightgbm": "0.0.1"}):
            work = prepare(tmp_path, synthetic, [*DASK, f"engine.address={address}"])
            expected = f"lightgbm differs between this process ({lgb.__version__}) and the worker"
            fails_cleanly(work, "aggregate", "data/interim/aggregates.parquet", expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("engine.name=spark", "engine.name: 'spark' is not an engine"),
        ("engine.n_workers=0", "engine.n_workers must be a positive number"),
        ("engine.memory_limit=lots", "engine.memory_limit: 'lots' is not a size"),
    ],
)
def test_a_bad_engine_section_stops_before_any_cluster(synthetic, tmp_path, override, message):
    work = prepare(tmp_path, synthetic, [*DASK, override])
    fails_cleanly(work, "aggregate", "data/interim/aggregates.parquet", message)


# --- end to end, as the README tells a user ------------------------------------------------


@pytest.mark.slow
def test_dvc_exp_run_on_a_dask_cluster(tmp_path):
    """`dvc exp run -S engine=dask` in a copy of this working tree: every stage after it
    (threshold, validate, drift, package) takes the cluster's outputs as they are."""
    repo = tmp_path / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    venv = str(Path(sys.executable).parent)  # this suite's dvc and python, the copy's code
    env = {
        **os.environ,
        "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{repo / 'src'}{os.pathsep}{repo}",
    }
    for args in (
        ["git", "init", "--quiet"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "copy"],
    ):
        subprocess.run(args, cwd=repo, env=env, check=True, capture_output=True)
    overrides = ["engine=dask", "engine.partition_size=500", "data.n_train=2000"]
    overrides += ["data.n_test=400", "model=fast"]
    done = subprocess.run(
        ["dvc", "exp", "run", "--name", "on-dask", *(a for o in overrides for a in ("-S", o))],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "2 workers, 2 threads; dashboard http" in done.stdout + done.stderr  # LocalCluster
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["engine"]["name"] == "dask"
    trained = json.loads((repo / "dvclive" / "train" / "metrics.json").read_text())
    assert 0.6 < trained["oof_auc"] < 1.0
    manifest = json.loads((repo / "models" / "package" / "manifest.json").read_text())
    assert manifest["tag"].startswith("credit_scoring:")
    assert json.loads((repo / "reports" / "drift.json").read_text())
