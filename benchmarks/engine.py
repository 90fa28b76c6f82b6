"""aggregate and train with the local engine and on a two-worker LocalCluster, at full scale.

    python -m benchmarks.engine --work /tmp/engine_full [--workers 2] [--memory-limit auto]
                                [--stages aggregate train]
    python -m benchmarks.engine --work /tmp/engine_tiny --n-train 3000 --n-test 600   # a smoke run
    python -m benchmarks.engine --work /tmp/engine_default --data synthetic --seeds 42 7 11 23 99

The first run prepares ``--work`` once (the synthetic_full tables, then aggregate and features
with the local engine), as `dvc exp run -S data=synthetic_full` would. Each measurement is then
a fresh process that runs the stage's entry point (``pipelines.<stage>.main``: read, compute,
write) on that folder: aggregate local, aggregate on Dask, train local, train on Dask. For Dask,
the process starts a LocalCluster of ``--workers`` single-threaded workers first (not timed) and
the stage connects to it by address, as to any cluster.

Peak memory is each process's own high-water mark (``VmHWM``): the stage's process (with
Dask, it also holds the scheduler and the nannies, as a LocalCluster puts them there) and every
worker process, asked over the cluster before it closes. The point on two cores is not speed:
it is that no process holds the whole history, so the report sets the largest worker's peak
against the local engine's. Prints JSON; figures go in docs/benchmarks.md.

``--seeds`` compares the engines' out-of-fold AUC instead, train only, once per model seed
(``model.seed``: the folds, the bagging and the feature sampling): on a few thousand applicants
one draw of the folds and samples moves the AUC by as much as the engines differ, so the gap is
read over several.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import time
from pathlib import Path

import yaml
from distributed import Client

from benchmarks.common import machine, peak_rss_gib, repeat_in_subprocesses
from credit_scoring.config import compose_params
from tests.support.cluster import local_cluster
from tests.support.stages import ROOT, run_stage, write_params

STAGES = ("aggregate", "train")
ENGINES = ("local", "dask")


def prepare(work: Path, overrides: list[str]) -> None:
    """The stage folder: params, raw tables, aggregates and features from the local engine."""
    write_params(work, overrides)
    for stage in ("download", "aggregate", "features"):
        run_stage(stage, work)


def one_run(
    stage: str, engine: str, work: Path, workers: int, memory_limit: str, seed: int | None = None
) -> dict:
    params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    if seed is not None:
        params["model"]["seed"] = seed
    stage_main = importlib.import_module(f"pipelines.{stage}").main
    if engine == "local":
        with contextlib.chdir(work):
            start = time.perf_counter()
            stage_main(params)
        return {"wall_s": time.perf_counter() - start, "peak_gib": {"stage": peak_rss_gib()}}
    with local_cluster(workers, memory_limit) as cluster, Client(cluster) as client:
        dask_engine = yaml.safe_load(compose_params(ROOT / "conf", ["engine=dask"]))["engine"]
        params["engine"] = {**dask_engine, "address": cluster.scheduler_address}
        with contextlib.chdir(work):
            start = time.perf_counter()
            stage_main(params)
            wall = time.perf_counter() - start
        peaks = client.run(peak_rss_gib)
    named = {f"worker {i + 1}": peak for i, (_, peak) in enumerate(sorted(peaks.items()))}
    return {"wall_s": wall, "peak_gib": {"stage, scheduler, nannies": peak_rss_gib(), **named}}


def compare_by_seed(work: Path, seeds: list[int], cluster: list[str]) -> dict:
    """Each engine's OOF AUC for each model seed, their differences, and the mean difference."""
    by_seed = {}
    for seed in seeds:
        aucs = {}
        for engine in ENGINES:
            one = ["--stage", "train", "--engine", engine, "--work", str(work), "--seed", str(seed)]
            repeat_in_subprocesses("benchmarks.engine", [*one, *cluster], 1)
            metrics = work / "dvclive" / "train" / "metrics.json"
            aucs[engine] = json.loads(metrics.read_text())["oof_auc"]
        by_seed[seed] = {**aucs, "dask_minus_local": aucs["dask"] - aucs["local"]}
    gaps = [run["dask_minus_local"] for run in by_seed.values()]
    return {"by_seed": by_seed, "mean_gap": sum(gaps) / len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", action="store_true", help="a single run, as JSON (internal)")
    parser.add_argument("--stage", choices=STAGES, default="aggregate")
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument("--work", type=Path, required=True, help="the stage folder (kept)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="auto", help="per worker, e.g. 10GiB")
    parser.add_argument("--n-train", type=int, help="fewer applicants, for a smoke run")
    parser.add_argument("--n-test", type=int)
    parser.add_argument("--data", default="synthetic_full", help="the data group, when preparing")
    parser.add_argument("--seeds", type=int, nargs="+", help="compare train's OOF AUC by seed")
    parser.add_argument("--seed", type=int, help="the model seed of a single run (internal)")
    parser.add_argument("--stages", choices=STAGES, nargs="+", default=list(STAGES))
    args = parser.parse_args()
    cluster = ["--workers", str(args.workers), "--memory-limit", args.memory_limit]
    if args.one:
        run = one_run(
            args.stage, args.engine, args.work, args.workers, args.memory_limit, args.seed
        )
        print(json.dumps(run))
        return
    if not (args.work / "params.yaml").is_file():
        sizes = [f"data.n_{k}={v}" for k, v in (("train", args.n_train), ("test", args.n_test))]
        prepare(args.work, [f"data={args.data}", *(s for s in sizes if not s.endswith("None"))])
    result: dict = {"machine": machine(), "work": str(args.work), "workers": args.workers}
    if args.seeds:
        result["oof_auc"] = compare_by_seed(args.work, args.seeds, cluster)
        print(json.dumps(result, indent=2))
        return
    for stage in args.stages:
        runs = {}
        for engine in ENGINES:
            one = ["--stage", stage, "--engine", engine, "--work", str(args.work), *cluster]
            (runs[engine],) = repeat_in_subprocesses("benchmarks.engine", one, 1)
            if stage == "train":
                metrics = args.work / "dvclive" / "train" / "metrics.json"
                runs[engine]["oof_auc"] = json.loads(metrics.read_text())["oof_auc"]
        largest = max(v for k, v in runs["dask"]["peak_gib"].items() if k.startswith("worker"))
        runs["largest_worker_over_local"] = round(largest / runs["local"]["peak_gib"]["stage"], 2)
        result[stage] = runs
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
