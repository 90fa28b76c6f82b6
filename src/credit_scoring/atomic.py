"""Atomic writes: a stage that fails leaves the previous artifact, or none, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` and move it into place only on success.

    Works for files and directories alike; the sibling lives on the same filesystem, so the
    final ``os.replace`` is atomic, and an existing directory is swapped out, not merged into.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = scratch / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            retired = scratch / f"{target.name}.old"
            os.replace(target, retired)
        os.replace(staged, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_frame(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> None:
    """Write one parquet file, byte for byte the same for the same frame.

    ``row_group_size`` caps the rows of a row group (pyarrow's default: 1,048,576), the
    smallest piece a reader such as Dask can take of the file.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(
        table, path, compression="zstd", write_statistics=True, row_group_size=row_group_size
    )


def write_parquet(
    frame: pd.DataFrame, path: str | os.PathLike[str], row_group_size: int | None = None
) -> None:
    """Write one parquet file atomically (:func:`write_frame`)."""
    with atomic_path(path) as staged:
        write_frame(frame, staged, row_group_size)


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str]) -> None:
    """Write ``<name>.parquet`` for every table into ``out_dir``, all or nothing."""
    with atomic_path(out_dir) as staged:
        staged.mkdir()
        for name, frame in tables.items():
            write_frame(frame, staged / f"{name}.parquet")


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text artifact (a LightGBM model file, say) atomically."""
    with atomic_path(path) as staged:
        staged.write_text(text, encoding="utf-8")


def write_json(payload: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON atomically, keys in the order given (feature order is part of a schema)."""
    with atomic_path(path) as staged:
        staged.write_text(json.dumps(payload, indent=2) + "\n")
