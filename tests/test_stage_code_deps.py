"""dvc.yaml (and tuning/dvc.yaml) lists, for every stage, each file of our code the stage runs.

A module a stage imports but does not list would change the stage's outputs without DVC
rerunning it, and the lock would no longer say how they were made. The imports are read from
the source (every import statement, at any depth), so nothing has to be run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

OURS = ("credit_scoring", "pipelines")
# Every pipeline's stages: the root one and the tuning search's.
STAGES = {
    name: spec
    for pipeline in ("dvc.yaml", "tuning/dvc.yaml")
    for name, spec in yaml.safe_load((ROOT / pipeline).read_text())["stages"].items()
}


def module_file(name: str) -> Path | None:
    """The file of one of our modules (a package's ``__init__``), None for anything else."""
    parts = name.split(".")
    if parts[0] not in OURS:
        return None
    base = ROOT / ("src" if parts[0] == "credit_scoring" else "") / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(path: Path) -> set[str]:
    """Our modules that a file imports; ``from a import b`` may name a module b or a name in a."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if module_file(name)}


def code_of(module: str) -> set[str]:
    """Every file of ours that running ``python -m module`` may execute, relative to the root."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += imported(module_file(name))
    return {module_file(name).relative_to(ROOT).as_posix() for name in seen}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_depends_on_the_code_it_runs(stage):
    spec = STAGES[stage]
    module = spec["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [d for d in spec["deps"] if "${" not in d]  # the ${...} ones are data
    unlisted = {f for f in code_of(module) if not any(Path(f).is_relative_to(d) for d in deps)}
    assert unlisted == set(), f"{stage}: add these to its deps in dvc.yaml"
