"""The non-synthetic sources of the ``download`` stage: Kaggle files on disk, and the Kaggle API.

Both hand back the eight tables already held to the contract (:func:`schema.conform_table`), so
the stage never sees a frame the rest of the pipeline could choke on. Every failure is an
exception whose message names the file or table (and the column, when there is one):
:class:`schema.SchemaError` for a table's content, :class:`SourceError` for everything around it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import requests

from credit_scoring.errors import InputError
from credit_scoring.io import atomic_path
from credit_scoring.schema import CATEGORY, TABLES, SchemaError, conform_table, load_contract

log = logging.getLogger(__name__)

KAGGLE_COMPETITION = "home-credit-default-risk"

# Category columns are read as dictionary-encoded strings: pyarrow hands pandas a Categorical
# directly, which keeps 27M-row tables small, and labels such as STATUS "0" stay text.
_LABELS = pa.dictionary(pa.int32(), pa.string())

_MISSING_CREDENTIALS = (
    "Kaggle credentials are missing. Create an API token on kaggle.com (Settings → Account → "
    "API → Create New Token), save the downloaded kaggle.json in ~/.kaggle/ (or in "
    "$KAGGLE_CONFIG_DIR) and run `chmod 600 ~/.kaggle/kaggle.json`, or set KAGGLE_USERNAME and "
    "KAGGLE_KEY (or KAGGLE_API_TOKEN); then accept the competition rules on "
    "https://www.kaggle.com/competitions/{competition}/rules."
)

Opener = Callable[[], AbstractContextManager[Any]]


class SourceError(InputError, RuntimeError):
    """A source failed for a reason outside the tables' content: path, archive, credentials, net."""


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


def download_kaggle(
    dest: str | os.PathLike[str],
    competition: str = KAGGLE_COMPETITION,
    *,
    timeout: float = 10.0,
) -> Path:
    """Download the competition's files into the folder ``dest``; return what to hand to read_local.

    Credentials are checked before ``kaggle`` is imported (its import authenticates and prints),
    and Kaggle is probed with a ``timeout`` first, because the client itself sets no timeout and
    would hang on a network that drops packets. The download goes to a scratch folder next to
    ``dest`` that replaces ``dest`` only once complete. There is deliberately no fallback to
    synthetic data: a run that asked for Kaggle must fail loudly without it.

    Returns:
        The downloaded file (``dest/<competition>.zip``), or ``dest`` if Kaggle sent several.

    Raises:
        SourceError: credentials missing or rejected, rules not accepted, Kaggle unreachable.
    """
    dest = Path(dest)
    where = _kaggle_credentials()
    if where is None:
        raise SourceError(_MISSING_CREDENTIALS.format(competition=competition))
    log.info("Kaggle credentials found in %s", where)

    from kagglesdk.kaggle_env import KaggleEnv, get_endpoint

    endpoint = get_endpoint(KaggleEnv.PROD)  # what KaggleApi talks to outside its own CLI
    _probe(endpoint, timeout)
    with _kaggle_errors(competition, endpoint):
        api = _kaggle_api()
        log.info("downloading the %s files from Kaggle into %s", competition, dest)
        start = time.perf_counter()
        with atomic_path(dest) as staged:
            staged.mkdir()
            api.competition_download_files(competition, path=str(staged), quiet=True)
            names = sorted(p.name for p in staged.iterdir())
    log.info("downloaded %s in %.0fs", ", ".join(names), time.perf_counter() - start)
    return dest / names[0] if len(names) == 1 else dest


# --- local files ----------------------------------------------------------------------------


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


# --- Kaggle ---------------------------------------------------------------------------------


def _kaggle_config_dir() -> Path:
    """Where kaggle 2.2 looks for kaggle.json (``KaggleApi.config_dir``)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"


def _json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SourceError(f"cannot read the Kaggle credentials in {path}: {err}") from err
    if not isinstance(data, dict):
        raise SourceError(f"{path} is not a JSON object; expected {{'username': …, 'key': …}}")
    return data


def _kaggle_credentials() -> str | None:
    """Name the place kaggle 2.2 will take credentials from, or None; never reveals them.

    Mirrors ``KaggleApi.authenticate``: an access token (KAGGLE_API_TOKEN, ~/.kaggle/access_token),
    a legacy key (KAGGLE_USERNAME/KAGGLE_KEY over kaggle.json), or ``kaggle auth login`` OAuth.
    """
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    home = Path.home() / ".kaggle"
    for token in (home / "access_token", home / "access_token.txt"):
        if token.is_file() and token.read_text().strip():
            return str(token)
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME and KAGGLE_KEY"
    config = _kaggle_config_dir() / "kaggle.json"
    stored = _json_file(config)
    if (env.get("KAGGLE_USERNAME") or stored.get("username")) and (
        env.get("KAGGLE_KEY") or stored.get("key")
    ):
        return str(config)
    if _json_file(home / "credentials.json").get("refresh_token"):
        return str(home / "credentials.json")
    return None


def _probe(endpoint: str, timeout: float) -> None:
    """Fail within ``timeout`` seconds if Kaggle is unreachable (proxies as requests sees them)."""
    try:
        requests.head(endpoint, timeout=timeout)
    except requests.RequestException as err:
        raise SourceError(
            f"Kaggle could not be reached at {endpoint} within {timeout:g}s "
            f"({type(err).__name__}: {err}); check the network connection and any HTTPS_PROXY "
            f"setting"
        ) from err


@contextlib.contextmanager
def _kaggle_output() -> Iterator[None]:
    """Route what the kaggle client prints (banners, help, warnings) to the log."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip():
                log.debug("kaggle: %s", line)


def _kaggle_api() -> Any:
    """An authenticated ``KaggleApi``, imported only now: importing kaggle authenticates."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as err:
        raise SourceError(
            f"cannot import the kaggle client ({err}); add the missing package to the project's "
            f"dependencies"
        ) from err
    api = KaggleApi()
    # The class reads its config dir once, at import; follow the environment as it is now.
    api.config_dir = str(_kaggle_config_dir())
    api.config = os.path.join(api.config_dir, "kaggle.json")
    api.authenticate()
    return api


@contextlib.contextmanager
def _kaggle_errors(competition: str, endpoint: str) -> Iterator[None]:
    """Turn the kaggle client's exceptions (and its ``exit(1)``) into one clear SourceError."""
    rules = f"https://www.kaggle.com/competitions/{competition}/rules"
    try:
        with _kaggle_output():
            yield
    except SystemExit as err:  # authenticate() exits when no credential is accepted
        raise SourceError(
            f"Kaggle rejected the credentials; create a new API token on kaggle.com (Settings → "
            f"Account → API) and accept the competition rules on {rules}"
        ) from err
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (401, 403):
            problem = "credentials rejected or competition rules not accepted"
            hint = f"check the API token and accept the rules on {rules}"
        elif status == 404:
            problem, hint = f"no competition named {competition!r}", "check the competition name"
        else:
            problem, hint = "the request failed", "try again later"
        raise SourceError(f"Kaggle answered HTTP {status} ({err}): {problem}; {hint}") from err
    except requests.RequestException as err:
        raise SourceError(
            f"Kaggle could not be reached at {endpoint} ({type(err).__name__}: {err}); check the "
            f"network connection and any HTTPS_PROXY setting"
        ) from err
