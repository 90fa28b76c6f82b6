"""Partitioned frames on the cluster: read from parquet, lined up by applicant, written back.

Every frame a stage combines is range-partitioned by ``SK_ID_CURR`` on the same divisions, so
partition ``i`` of each holds all the rows of the same applicants and one task can run the local
engine's code on them. The stage's output is streamed back partition by partition into one
parquet file, written atomically here, so the stages downstream read it as they always did.
Training reads a features file as a matrix instead, also a row group at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask import delayed
from distributed import Client

from credit_scoring.atomic import atomic_path
from credit_scoring.contract.tables import KEY

log = logging.getLogger(__name__)

# Dask's task-based shuffle, not its peer-to-peer one: a worker lost mid-shuffle then fails
# like any task (KilledWorker, after the allowed retries), where P2P fails with errors of its own.
# Its pieces are task results, which a worker spills to disk past its share of its memory limit.
SHUFFLE = "tasks"


def read_frame(path: Path, columns: Sequence[str] | None = None) -> dd.DataFrame:
    """A parquet file as a Dask frame, one partition per row group.

    Per row group, because Dask's own default joins row groups up to 256 MiB of the file on
    disk: compressed, that is a whole table of the Kaggle data (all 11 million instalments), and
    a gigabyte or more once read, in one worker. The path is made absolute: workers do not
    share this process's working directory, only (on a real cluster) the filesystem.
    """
    return dd.read_parquet(
        str(path.resolve()),
        columns=list(columns) if columns else None,
        split_row_groups=True,
    )


def _row_group(path: str, group: int, columns: Sequence[str]) -> np.ndarray:
    table = pq.ParquetFile(path).read_row_group(group, columns=list(columns))
    return table.to_pandas().to_numpy(dtype="float64")


def read_matrix(path: Path, columns: Sequence[str]) -> da.Array:
    """Numeric columns of a parquet file as a float64 Dask array, one chunk per row group.

    The chunks' lengths come from the file's footer. Dask's ``to_dask_array(lengths=True)``
    would count them on a frame whose row groups its optimiser may join, and then refuses the
    count it gets (7 lengths for 13 partitions, on the Kaggle-scale features).
    """
    source = str(path.resolve())
    metadata = pq.ParquetFile(source).metadata
    chunks = [
        da.from_delayed(
            delayed(_row_group)(source, group, columns),
            shape=(metadata.row_group(group).num_rows, len(columns)),
            dtype="float64",
        )
        for group in range(metadata.num_row_groups)
    ]
    return da.concatenate(chunks) if chunks else da.empty((0, len(columns)), dtype="float64")


def applicant_divisions(keys: np.ndarray, size: int) -> list[int]:
    """Divisions that put ``size`` applicants (distinct keys) in each partition, in key order."""
    keys = np.unique(keys)
    if keys.size == 0:
        return [0, 0]
    starts = [int(k) for k in keys[::size]]
    if len(starts) > 1 and starts[-1] == keys[-1]:
        starts.pop()  # a last partition of one key: its start is already the closing division
    return [*starts, int(keys[-1])]


def by_applicant(frame: dd.DataFrame, divisions: Sequence[int]) -> dd.DataFrame:
    """``frame`` indexed by applicant and range-partitioned on ``divisions``.

    Rows outside the divisions are dropped first: they belong to no partition of the others.
    """
    inside = frame[(frame[KEY] >= divisions[0]) & (frame[KEY] <= divisions[-1])]
    return inside.set_index(KEY, divisions=list(divisions), shuffle_method=SHUFFLE)


def write_parquet(frame: dd.DataFrame, client: Client, path: str | Path) -> int:
    """Compute every partition on the cluster and write them, in order, into one parquet file.

    Partitions are computed in parallel and fetched one at a time, each released once written,
    so this process holds one partition at most; ``frame``'s index (the applicant) becomes its
    first column. Atomic: a failure leaves the previous file. Returns the rows written.
    """
    schema = pa.Schema.from_pandas(frame._meta.reset_index(), preserve_index=False)
    futures = client.compute(frame.to_delayed())
    rows = 0
    with atomic_path(path) as staged, pq.ParquetWriter(staged, schema, compression="zstd") as out:
        for future in futures:
            part: pd.DataFrame = future.result().reset_index()
            future.release()
            out.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
            rows += len(part)
    log.info("%s: %d rows from %d partitions", path, rows, len(futures))
    return rows
