"""The local-files and Kaggle sources: contract-conformed tables, or an error naming the culprit.

Nothing here touches the network: Kaggle is either unreachable on purpose (a closed loopback
port as proxy) or a fake server on loopback that the real kaggle client is pointed at.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import types
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_scoring.contract.conform import conform_table
from credit_scoring.contract.tables import (
    CATEGORY,
    TABLES,
    SchemaError,
    load_contract,
)
from credit_scoring.errors import SourceError
from credit_scoring.sources.kaggle import download_kaggle
from credit_scoring.sources.local import read_local

N_ROWS = 4
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: nothing listens on loopback


# --- fixtures: tiny Kaggle-format files ------------------------------------------------------


def kaggle_tables(n: int = N_ROWS) -> dict[str, pd.DataFrame]:
    """A few contract-valid rows per table (inside the hard limits), keys consistent across
    tables, NaN where allowed."""
    rng = np.random.default_rng(7)
    contract = load_contract()
    rows = np.arange(n)
    applicants = 100002 + rows
    keys = {
        "application_train": {"SK_ID_CURR": applicants, "TARGET": rows % 2},
        "application_test": {"SK_ID_CURR": 200002 + rows},
        "bureau": {"SK_ID_CURR": applicants, "SK_ID_BUREAU": 5000000 + rows},
        "bureau_balance": {"SK_ID_BUREAU": 5000000 + rows // 2, "MONTHS_BALANCE": -(rows % 2)},
        "previous_application": {"SK_ID_CURR": applicants, "SK_ID_PREV": 2000000 + rows},
    }
    for history in ("POS_CASH_balance", "credit_card_balance", "installments_payments"):
        keys[history] = {"SK_ID_CURR": applicants, "SK_ID_PREV": 2000000 + rows}
    tables = {}
    for name in TABLES:
        columns = {}
        for col in contract[name].columns:
            if col.dtype == CATEGORY:
                values = pd.Series([col.levels[i % len(col.levels)] for i in rows], dtype=object)
            elif col.limits.values:
                values = pd.Series([col.limits.values[i % len(col.limits.values)] for i in rows])
            elif col.dtype == "int64":
                lowest, highest = col.limits.minimum, col.limits.maximum
                high = highest if highest is not None else (lowest or 0) + 3
                low = lowest if lowest is not None else high - 3003
                values = pd.Series(rng.integers(math.ceil(low), math.floor(high) + 1, n))
            elif col.limits.maximum is not None and col.limits.maximum <= 0:
                values = pd.Series(rng.integers(1, 2000, n) * -112.5)  # days before applying
            elif col.limits.maximum is not None and col.limits.maximum <= 1:
                values = pd.Series(rng.integers(0, 9, n) / 8)  # a normalised score
            else:
                values = pd.Series(rng.integers(1, 2000, n) * 112.5)  # written as "202500.0"
            if col.nullable:
                values[n - 1] = None if col.dtype == CATEGORY else np.nan
            columns[col.name] = keys[name].get(col.name, values)
        tables[name] = pd.DataFrame(columns)
    return tables


def write_csvs(folder: Path) -> Path:
    """Write the tables the way Kaggle ships them, plus the files the source must ignore."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in kaggle_tables().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "sample_submission.csv").write_text("SK_ID_CURR,TARGET\n200002,0.5\n")
    (folder / "HomeCredit_columns_description.csv").write_bytes(b",Table,Row\n1,x,caf\xe9\n")
    return folder


def zip_folder(folder: Path, archive: Path, prefix: str = "", stored: bool = False) -> Path:
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(archive, "w", method) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, prefix + file.name)
    return archive


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    return write_csvs(tmp_path / "csv")


def assert_contract_dtypes(tables: dict[str, pd.DataFrame]) -> None:
    contract = load_contract()
    assert list(tables) == list(TABLES)
    for name, frame in tables.items():
        assert list(frame.columns) == contract[name].names
        for col in contract[name].columns:
            series = frame[col.name]
            if col.dtype == CATEGORY:
                assert isinstance(series.dtype, pd.CategoricalDtype), (name, col.name)
                assert list(series.cat.categories) == list(col.levels), (name, col.name)
            else:
                assert str(series.dtype) == col.dtype, (name, col.name)


# --- read_local: good input ------------------------------------------------------------------


def test_directory_gives_the_eight_conformed_tables(
    csv_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written = kaggle_tables()
    with caplog.at_level(logging.INFO, logger="credit_scoring.sources.local"):
        tables = read_local(csv_dir)
    assert_contract_dtypes(tables)
    for name in TABLES:
        pd.testing.assert_frame_equal(tables[name], conform_table(name, written[name]))
    assert tables["bureau_balance"]["STATUS"].tolist()[:2] == ["0", "1"]  # digits stay labels
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(f"{name}: {N_ROWS} rows" in logged for name in TABLES)


@pytest.mark.parametrize(
    "layout", ["zip, CSVs at top level", "zip, CSVs in a sub-folder", "folder holding the zip"]
)
def test_zip_gives_the_same_frames_as_the_folder(
    csv_dir: Path, tmp_path: Path, layout: str
) -> None:
    prefix = "home-credit-default-risk/" if "sub-folder" in layout else ""
    archive = zip_folder(csv_dir, tmp_path / "home-credit-default-risk.zip", prefix)
    if layout == "folder holding the zip":
        (tmp_path / "download").mkdir()
        archive = archive.rename(tmp_path / "download" / archive.name).parent
    from_zip, from_dir = read_local(archive), read_local(csv_dir)
    assert list(from_zip) == list(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(from_zip[name], from_dir[name])


def test_int_column_written_as_floats_is_accepted(csv_dir: Path) -> None:
    path = csv_dir / "bureau.csv"
    frame = pd.read_csv(path)
    frame["DAYS_CREDIT"] = frame["DAYS_CREDIT"].astype(float)  # "-1234.0", as some exports do
    frame.to_csv(path, index=False)
    assert read_local(csv_dir)["bureau"]["DAYS_CREDIT"].dtype == "int64"


# --- read_local: bad input names the table and the column ------------------------------------


def _edit_csv(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / f"{name}.csv"
        edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)

    return apply


def _set(column: str, value: str, row: int = 1) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return edit


def _append_line(name: str, line: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        with open(folder / f"{name}.csv", "a") as f:
            f.write(line + "\n")

    return apply


def _header_only(name: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / f"{name}.csv"
        path.write_text(path.read_text().splitlines()[0] + "\n")

    return apply


BAD_TABLES = {
    "missing file": (
        lambda folder: (folder / "bureau.csv").unlink(),
        "bureau",
        None,
        "bureau.csv not found",
    ),
    "missing column": (
        _edit_csv("application_train", lambda f: f.drop(columns="AMT_CREDIT")),
        "application_train",
        "AMT_CREDIT",
        "missing column",
    ),
    "extra column": (
        _edit_csv("bureau", lambda f: f.assign(SURPRISE="1")),
        "bureau",
        "SURPRISE",
        "unexpected column",
    ),
    "column twice": (
        lambda folder: (folder / "bureau_balance.csv").write_text(
            "SK_ID_BUREAU,MONTHS_BALANCE,STATUS,STATUS\n5000000,0,C,C\n"
        ),
        "bureau_balance",
        "STATUS",
        "twice",
    ),
    "text in a float column": (
        _edit_csv("application_train", _set("AMT_CREDIT", "lots")),
        "application_train",
        "AMT_CREDIT",
        "'lots'",
    ),
    "fraction in an int column": (
        _edit_csv("bureau", _set("DAYS_CREDIT", "-12.5")),
        "bureau",
        "DAYS_CREDIT",
        "expected int64",
    ),
    "unknown level": (
        _edit_csv("application_test", _set("CODE_GENDER", "Q")),
        "application_test",
        "CODE_GENDER",
        "unknown level",
    ),
    "duplicate SK_ID_CURR": (
        _edit_csv("application_test", _set("SK_ID_CURR", "200002")),
        "application_test",
        "SK_ID_CURR",
        "duplicate key",
    ),
    "TARGET = 2": (
        _edit_csv("application_train", _set("TARGET", "2")),
        "application_train",
        "TARGET",
        "values must be in [0, 1]",
    ),
    "header only": (
        _header_only("previous_application"),
        "previous_application",
        None,
        "empty",
    ),
    "ragged row": (
        _append_line("bureau_balance", "5000009,-3,C,surplus"),
        "bureau_balance",
        None,
        f"bureau_balance.csv is not a valid CSV: CSV parse error: Row #{N_ROWS + 2}: Expected 3",
    ),
}


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_table_is_named_with_its_column(
    case: str, packed: bool, csv_dir: Path, tmp_path: Path
) -> None:
    damage, table, column, problem = BAD_TABLES[case]
    damage(csv_dir)
    path = zip_folder(csv_dir, tmp_path / "hc.zip") if packed else csv_dir
    with pytest.raises(SchemaError) as caught:
        read_local(path)
    err = caught.value
    assert (err.table, err.column) == (table, column)
    assert str(err).startswith(f"{table}.{column}:" if column else f"{table}:")
    assert problem in str(err)


def _not_a_zip(csv_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "hc.zip").write_bytes(b"PK\x03\x04 but nothing else")
    return tmp_path / "hc.zip"


def _truncated_zip(csv_dir: Path, tmp_path: Path) -> Path:
    archive = zip_folder(csv_dir, tmp_path / "hc.zip")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return archive


def _bad_crc_zip(csv_dir: Path, tmp_path: Path) -> Path:
    (csv_dir / "bureau.csv").write_text((csv_dir / "bureau.csv").read_text() + "\n" * 64)
    archive = zip_folder(csv_dir, tmp_path / "hc.zip", stored=True)
    raw = archive.read_bytes()
    blank = raw.index(b"\n" * 64)
    archive.write_bytes(raw[:blank] + b" " + raw[blank + 1 :])  # same size, wrong CRC
    return archive


def _deflate64_zip(csv_dir: Path, tmp_path: Path) -> Path:
    archive = zip_folder(csv_dir, tmp_path / "hc.zip")
    raw = bytearray(archive.read_bytes())
    entry = raw.rindex(b"bureau.csv") - 46  # its central directory record, the archive's tail
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    raw[entry + 10 : entry + 12] = (9).to_bytes(2, "little")  # method 9: Deflate64
    archive.write_bytes(bytes(raw))
    return archive


def _two_zips(csv_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "dl").mkdir()
    zip_folder(csv_dir, tmp_path / "dl" / "a.zip")
    zip_folder(csv_dir, tmp_path / "dl" / "b.zip")
    return tmp_path / "dl"


BAD_SOURCES = {
    "path does not exist": (lambda d, t: t / "nowhere", "nowhere does not exist"),
    "not a zip": (_not_a_zip, "hc.zip is not a readable zip archive"),
    "truncated zip": (_truncated_zip, "hc.zip is not a readable zip archive"),
    "corrupt zip member": (_bad_crc_zip, "hc.zip:bureau.csv: the zip archive is corrupt"),
    "unsupported compression": (_deflate64_zip, "compression method is not supported"),
    "ambiguous zips": (_two_zips, "several zips ['a.zip', 'b.zip']"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_unreadable_source_is_a_source_error(case: str, csv_dir: Path, tmp_path: Path) -> None:
    make, message = BAD_SOURCES[case]
    with pytest.raises(SourceError, match=re.escape(message)):
        read_local(make(csv_dir, tmp_path))


# --- download_kaggle --------------------------------------------------------------------------


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Kaggle credentials or proxy from the machine running the tests; HOME in tmp_path."""
    for var in list(os.environ):
        if var.startswith("KAGGLE_") or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    return home


def _no_trace_of(dest: Path) -> bool:
    return not dest.exists() and not list(dest.parent.glob(f".{dest.name}.*"))


@pytest.mark.timeout(30)
def test_kaggle_without_credentials_says_how_to_fix(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / ".kaggle").mkdir()
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "someone"}')  # no key
    dest = tmp_path / "kaggle"
    with pytest.raises(SourceError) as caught:
        download_kaggle(dest)
    message = str(caught.value)
    assert "credentials are missing" in message
    for hint in ("kaggle.json", "chmod 600", "KAGGLE_USERNAME", "KAGGLE_KEY", "rules"):
        assert hint in message
    assert _no_trace_of(dest)
    assert capsys.readouterr().out == ""  # kaggle's banner was never triggered


def test_kaggle_json_that_is_not_json_is_named(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text("username: someone")
    with pytest.raises(SourceError, match=r"kaggle-config/kaggle\.json"):
        download_kaggle(tmp_path / "kaggle")


def _credentials(kind: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {"username": "someone", "key": "0123456789abcdef"}
    if kind == "KAGGLE_USERNAME/KAGGLE_KEY":
        monkeypatch.setenv("KAGGLE_USERNAME", secret["username"])
        monkeypatch.setenv("KAGGLE_KEY", secret["key"])
    elif kind == "kaggle.json in KAGGLE_CONFIG_DIR":
        config = Path(os.environ["KAGGLE_CONFIG_DIR"])
        config.mkdir()
        (config / "kaggle.json").write_text(json.dumps(secret))
    elif kind == "~/.kaggle/kaggle.json":
        monkeypatch.delenv("KAGGLE_CONFIG_DIR")
        (home / ".kaggle").mkdir()
        (home / ".kaggle" / "kaggle.json").write_text(json.dumps(secret))
    elif kind == "KAGGLE_API_TOKEN":
        monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123456789")
    elif kind == "~/.kaggle/access_token":
        (home / ".kaggle").mkdir()
        (home / ".kaggle" / "access_token").write_text("KGAT_0123456789\n")


CREDENTIALS = [
    "KAGGLE_USERNAME/KAGGLE_KEY",
    "kaggle.json in KAGGLE_CONFIG_DIR",
    "~/.kaggle/kaggle.json",
    "KAGGLE_API_TOKEN",
    "~/.kaggle/access_token",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", CREDENTIALS)
def test_kaggle_unreachable_fails_fast(
    kind: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials(kind, home, monkeypatch)
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, CLOSED_PORT)
    dest = tmp_path / "kaggle"
    importlib.import_module("kagglesdk.kaggle_env")  # timed: the refusal, not a first import
    start = time.perf_counter()
    with pytest.raises(SourceError, match="Kaggle could not be reached"):
        download_kaggle(dest)
    assert time.perf_counter() - start < 5
    assert _no_trace_of(dest)


@pytest.mark.timeout(30)
def test_kaggle_that_never_answers_times_out(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials("KAGGLE_USERNAME/KAGGLE_KEY", home, monkeypatch)
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{silent.getsockname()[1]}")
        start = time.perf_counter()
        with pytest.raises(SourceError, match=r"could not be reached .* within 0\.5s"):
            download_kaggle(tmp_path / "kaggle", timeout=0.5)
    assert time.perf_counter() - start < 5


class FakeKaggle(BaseHTTPRequestHandler):
    """Kaggle's API as the client sees it: POST an RPC, get JSON errors or a redirect to a file."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls.append(self.path)
        reply = self.server.reply
        if reply == "hang up":
            self.close_connection = True
        elif reply == "file":
            self.send_response(302)
            self.send_header("Location", "/files/home-credit-default-risk.zip?token=x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            body = json.dumps({"code": reply, "message": f"fake refusal {reply}"}).encode()
            self.send_response(reply)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_kaggle(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    """The real kaggle client, with fake credentials, talking to a fake Kaggle on loopback."""
    try:
        import six  # noqa: F401
    except ImportError:  # kaggle 2.2.4 imports six without declaring it; upload code only
        shim = types.ModuleType("six")
        shim.iteritems = lambda d, **kw: iter(d.items(**kw))
        monkeypatch.setitem(sys.modules, "six", shim)
    from kagglesdk import kaggle_env

    _credentials("KAGGLE_USERNAME/KAGGLE_KEY", home, monkeypatch)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKaggle)
    server.calls, server.reply, server.payload = [], "file", b""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.PROD, endpoint)
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
def test_kaggle_download_lands_whole_and_reads(
    fake_kaggle: ThreadingHTTPServer,
    csv_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_kaggle.payload = zip_folder(csv_dir, tmp_path / "served.zip").read_bytes()
    dest = tmp_path / "data" / "kaggle"
    path = download_kaggle(dest)
    assert path == dest / "home-credit-default-risk.zip"
    assert sorted(p.name for p in dest.iterdir()) == [path.name]
    assert fake_kaggle.calls == ["/v1/competitions.CompetitionApiService/DownloadDataFiles"]
    assert_contract_dtypes(read_local(path))
    assert not list(dest.parent.glob(".kaggle.*"))
    assert capsys.readouterr().out == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (401, "HTTP 401 .*credentials rejected or competition rules not accepted"),
        (403, "HTTP 403 .*credentials rejected or competition rules not accepted"),
        (404, "HTTP 404 .*no competition named 'home-credit-default-risk'"),
        ("hang up", "Kaggle could not be reached"),
    ],
)
def test_kaggle_refusal_is_explained(
    reply: int | str, message: str, fake_kaggle: ThreadingHTTPServer, tmp_path: Path
) -> None:
    fake_kaggle.reply = reply
    dest = tmp_path / "kaggle"
    with pytest.raises(SourceError, match=message):
        download_kaggle(dest)
    assert fake_kaggle.calls  # the real client made the request
    assert _no_trace_of(dest)


@pytest.mark.timeout(60)
def test_kaggle_token_refused_at_authentication_is_explained(
    fake_kaggle: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An access token Kaggle does not know makes ``authenticate()`` print help and exit(1)."""
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_revoked")
    fake_kaggle.reply = 403
    with pytest.raises(SourceError, match="Kaggle rejected the credentials"):
        download_kaggle(tmp_path / "kaggle")
    # the first `import kaggle` in a process authenticates too, hence a set
    assert set(fake_kaggle.calls) == {"/v1/security.OAuthService/IntrospectToken"}


def test_kaggle_client_that_cannot_be_imported_is_explained(
    fake_kaggle: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", None)
    with pytest.raises(SourceError, match="cannot import the kaggle client"):
        download_kaggle(tmp_path / "kaggle")
