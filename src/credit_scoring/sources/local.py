"""The Kaggle files on disk: a folder of the CSVs, or the competition's zip, streamed.

The tables come back already held to the contract (:func:`~credit_scoring.contract.tables.
conform_table`), so the stage never sees a frame the rest of the pipeline could choke on. Every
failure names the file or table (and the column, when there is one): a
:class:`~credit_scoring.contract.tables.SchemaError` for a table's content, a
:class:`~credit_scoring.errors.SourceError` for everything around it.
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from credit_scoring.contract.conform import conform_table
from credit_scoring.contract.tables import (
    CATEGORY,
    TABLES,
    SchemaError,
    load_contract,
)
from credit_scoring.errors import SourceError
from credit_scoring.sources.kaggle import KAGGLE_COMPETITION

log = logging.getLogger(__name__)

# Category columns are read as dictionary-encoded strings: pyarrow hands pandas a Categorical
# directly, which keeps 27M-row tables small, and labels such as STATUS "0" stay text.
_LABELS = pa.dictionary(pa.int32(), pa.string())

Opener = Callable[[], AbstractContextManager[Any]]


def read_local(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read the eight Kaggle tables from a folder of CSVs or the competition zip, conformed.

    ``path`` may be the folder holding the CSVs, ``home-credit-default-risk.zip`` itself (CSVs at
    its top level or in a sub-folder), or a folder that holds that zip and none of the CSVs. Zip
    members are streamed, never extracted. Other files (``sample_submission.csv``, the column
    descriptions) are ignored.

    Raises:
        SourceError: the path does not exist, or the zip is corrupt or ambiguous.
        SchemaError: a CSV is missing, malformed, or breaks the contract.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(
            f"{path} does not exist; point the local source at the folder holding the Home "
            f"Credit CSVs or at {KAGGLE_COMPETITION}.zip"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        archive = _archive_in(path, files)
        if archive is None:
            found = _match_tables((p.name for p in files), str(path))
            return _read_tables(
                {t: partial(pa.input_stream, str(path / name)) for t, name in found.items()},
                {t: str(path / name) for t, name in found.items()},
            )
        path = archive
    return _read_zip(path)


def _archive_in(folder: Path, files: list[Path]) -> Path | None:
    """The Kaggle zip to read when ``folder`` holds no table CSV, else None."""
    wanted = {f"{t}.csv".lower() for t in TABLES}
    if any(p.name.lower() in wanted for p in files):
        return None
    zips = [p for p in files if p.suffix.lower() == ".zip"]
    preferred = [p for p in zips if p.name.lower() == f"{KAGGLE_COMPETITION}.zip"]
    if len(preferred) == 1 or len(zips) == 1:
        return (preferred or zips)[0]
    if zips:
        raise SourceError(
            f"{folder} holds no table CSV but several zips {[p.name for p in zips]}; point the "
            f"local source at the one to read"
        )
    return None


def _read_zip(path: Path) -> dict[str, pd.DataFrame]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(
            f"{path} is not a readable zip archive ({err}); download it again or unzip it by hand "
            f"and point the local source at the folder"
        ) from err
    with archive:
        members = [m.filename for m in archive.infolist() if not m.is_dir()]
        found = _match_tables(members, str(path))
        return _read_tables(
            {t: partial(archive.open, member) for t, member in found.items()},
            {t: f"{path}:{member}" for t, member in found.items()},
        )


def _match_tables(names: Iterable[str], where: str) -> dict[str, str]:
    """Find ``<table>.csv`` for every table among ``names`` (any case, any sub-folder)."""
    wanted = {f"{t}.csv".lower(): t for t in TABLES}
    hits: dict[str, list[str]] = {}
    for name in names:
        table = wanted.get(PurePosixPath(name).name.lower())
        if table is not None:
            hits.setdefault(table, []).append(name)
    missing = [t for t in TABLES if t not in hits]
    if missing:
        also = f" (nor {', '.join(f'{t}.csv' for t in missing[1:])})" if len(missing) > 1 else ""
        raise SchemaError(missing[0], None, f"{missing[0]}.csv not found in {where}{also}")
    for table, found in hits.items():
        if len(found) > 1:
            raise SourceError(f"{where} holds {table}.csv more than once: {found}")
    return {t: hits[t][0] for t in TABLES}


def _read_tables(openers: dict[str, Opener], labels: dict[str, str]) -> dict[str, pd.DataFrame]:
    tables = {}
    for table in TABLES:
        start = time.perf_counter()
        frame = conform_table(table, _read_csv(table, openers[table], labels[table]))
        log.info(
            "%s: %d rows x %d columns from %s in %.1fs",
            table,
            len(frame),
            frame.shape[1],
            labels[table],
            time.perf_counter() - start,
        )
        tables[table] = frame
    return tables


def _read_csv(table: str, opener: Opener, label: str) -> pd.DataFrame:
    """Parse one CSV with pyarrow, numbers inferred, the contract's categories as labels."""
    try:
        arrow = _parse(table, opener, threads=True)
    except pa.ArrowInvalid as err:
        problem = _parse_error(table, opener, err)
        raise SchemaError(table, None, f"{label} is not a valid CSV: {problem}") from err
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise SourceError(
            f"{label}: the zip archive is corrupt ({err}); download it again"
        ) from err
    except NotImplementedError as err:  # Deflate64, say, which Windows uses for large archives
        raise SourceError(
            f"{label}: {err}; unzip the archive with another tool and point the local source at "
            f"the folder"
        ) from err
    except OSError as err:
        raise SourceError(f"cannot read {label}: {err}") from err
    names = arrow.column_names
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(table, repeated[0], f"{label} has the column(s) {repeated} twice")
    return arrow.to_pandas(split_blocks=True, self_destruct=True)


def _parse(table: str, opener: Opener, *, threads: bool) -> pa.Table:
    labels = {c.name: _LABELS for c in load_contract()[table].columns if c.dtype == CATEGORY}
    with opener() as source:
        return pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(use_threads=threads),
            convert_options=pacsv.ConvertOptions(column_types=labels, strings_can_be_null=True),
        )


def _parse_error(table: str, opener: Opener, err: pa.ArrowInvalid) -> str:
    """pyarrow's message, re-read on one thread, which is the only way it tells the line."""
    try:
        _parse(table, opener, threads=False)
    except pa.ArrowInvalid as located:
        return str(located)
    return str(err)
