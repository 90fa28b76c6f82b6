"""The Kaggle API: the competition's files downloaded with the user's credentials.

Credentials are checked before the client is imported, Kaggle is probed with a timeout first,
and every failure is a :class:`~credit_scoring.errors.SourceError` saying what to fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from credit_scoring.atomic import atomic_path
from credit_scoring.errors import SourceError

log = logging.getLogger(__name__)

KAGGLE_COMPETITION = "home-credit-default-risk"

_MISSING_CREDENTIALS = (
    "Kaggle credentials are missing. Create an API token on kaggle.com (Settings → Account → "
    "API → Create New Token), save the downloaded kaggle.json in ~/.kaggle/ (or in "
    "$KAGGLE_CONFIG_DIR) and run `chmod 600 ~/.kaggle/kaggle.json`, or set KAGGLE_USERNAME and "
    "KAGGLE_KEY (or KAGGLE_API_TOKEN); then accept the competition rules on "
    "https://www.kaggle.com/competitions/{competition}/rules."
)


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
