"""Run a pipeline stage for a test or a benchmark: the one runner, and the params it reads.

:func:`run_stage` runs ``pipelines/<stage>.py`` on ``<workdir>/params.yaml`` from ``workdir``, as
DVC does, either in this process (``main(params)``: fast, and an :class:`InputError` reaches
the caller, for ``pytest.raises``) or as DVC runs it, ``python -m pipelines.<stage>`` in a
subprocess (for what only a process shows: its exit code, the one-line error, no traceback).
:func:`write_params` writes the params a stage reads, composed from conf/ as ``make params``
does. Tests and benchmarks both import it as ``tests.support.stages``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import yaml

from credit_scoring.config import compose_params

ROOT = Path(__file__).resolve().parents[2]
# Stages run in a scratch folder; the aggregation spec they read stays the repository's.
SPEC = ROOT / yaml.safe_load((ROOT / "params.yaml").read_text())["aggregate"]["spec"]

if str(ROOT) not in sys.path:  # in-process runs import pipelines/, as PYTHONPATH does below
    sys.path.append(str(ROOT))

Env = Mapping[str, str | None]  # variables to set (None: to unset) on top of os.environ


def write_params(workdir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``workdir/params.yaml`` composed from conf/ with Hydra ``overrides``; return it.

    ``aggregate.spec`` points at the repository's spec file, so the stages can run in
    ``workdir`` (an override may still name another spec).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    text = compose_params(ROOT / "conf", [f"aggregate.spec={SPEC}", *overrides])
    (workdir / "params.yaml").write_text(text, encoding="utf-8")
    return yaml.safe_load(text)


@overload
def run_stage(
    stage: str,
    workdir: Path,
    *,
    in_process: Literal[True] = ...,
    env: Env | None = ...,
    timeout: float = ...,
) -> None: ...


@overload
def run_stage(
    stage: str,
    workdir: Path,
    *,
    in_process: Literal[False],
    env: Env | None = ...,
    timeout: float = ...,
) -> subprocess.CompletedProcess[str]: ...


def run_stage(
    stage: str,
    workdir: Path,
    *,
    in_process: bool = True,
    env: Env | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str] | None:
    """Run ``pipelines.<stage>`` on ``workdir/params.yaml`` with ``workdir`` as working directory.

    In process (the default), ``main(params)`` is called and whatever it raises propagates;
    ``env`` holds for the call only, and log records go to pytest's ``caplog`` (the stage's
    logging is configured by ``python -m`` only). With ``in_process=False`` it is run as DVC
    runs it, and the finished process (exit code, text stdout and stderr) is returned, whatever
    the exit code; ``timeout`` applies to the subprocess only.
    """
    if not in_process:
        return run_module(f"pipelines.{stage}", workdir, env=env, timeout=timeout)
    main = importlib.import_module(f"pipelines.{stage}").main
    load_params = importlib.import_module("pipelines.common").load_params
    with contextlib.chdir(workdir), environment(env or {}):
        main(load_params())  # ./params.yaml, as `python -m pipelines.<stage>` reads it
    return None


def run_module(
    module: str,
    workdir: Path,
    *args: str,
    env: Env | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m module *args`` in ``workdir``, with the repository importable; not checked."""
    variables = {**os.environ, **(env or {})}
    path = [str(ROOT), *filter(None, [variables.get("PYTHONPATH")])]
    variables["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=workdir,
        env={name: value for name, value in variables.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def environment(changes: Env) -> Iterator[None]:
    """``os.environ`` with ``changes`` applied (None unsets), restored afterwards."""
    saved = {name: os.environ.get(name) for name in changes}

    def apply(values: Env) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(changes)
    try:
        yield
    finally:
        apply(saved)
