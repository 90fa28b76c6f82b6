"""The credit-scoring screen's entry point: ``python app_gradio.py`` (or ``make ui``) serves it.

The screen (:mod:`credit_scoring.ui`) is a client of the BentoML service (``service.py``) over
HTTP: mounting Gradio 6 inside BentoML 1.4 is broken upstream, and a separate client is the
cleaner architecture anyway.

Settings (environment, read by :func:`main` only):
    CREDIT_SCORING_URL         the service (default ``http://127.0.0.1:3000``)
    CREDIT_SCORING_UI_HOST     interface to bind (default ``127.0.0.1``, this machine only)
    CREDIT_SCORING_UI_PORT     port (default 7860)
    CREDIT_SCORING_UI_TIMEOUT  seconds to wait for an answer from the service (default 30)
    CREDIT_SCORING_DRIFT_JSON  the drift stage's summary (default ``reports/drift.json``); its
                               full report is the ``.html`` file beside it
    CREDIT_SCORING_API_KEY     the service's API key, if it asks for one (or
    CREDIT_SCORING_API_KEY_FILE, a file holding it), sent with every call
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from credit_scoring.serving.settings import SettingsError, api_key
from credit_scoring.ui.screen import serve
from credit_scoring.ui.settings import Settings


def read_settings(env: Mapping[str, str]) -> Settings:
    """The settings from the environment; a malformed number stops with its name."""

    def number(name: str, default: float, kind: type) -> float:
        raw = env.get(name, "").strip()
        try:
            return kind(raw) if raw else default
        except ValueError:
            raise SystemExit(f"{name}={raw!r}: expected a number") from None

    try:
        key = api_key(env)
    except SettingsError as err:
        raise SystemExit(str(err)) from None
    return Settings(
        service_url=env.get("CREDIT_SCORING_URL") or Settings.service_url,
        host=env.get("CREDIT_SCORING_UI_HOST") or Settings.host,
        port=int(number("CREDIT_SCORING_UI_PORT", Settings.port, int)),
        timeout=number("CREDIT_SCORING_UI_TIMEOUT", Settings.timeout, float),
        drift_json=Path(env.get("CREDIT_SCORING_DRIFT_JSON") or Settings.drift_json),
        api_key=key,
    )


def main() -> None:
    """Read the settings from the environment, keep analytics off, serve."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    serve(read_settings(os.environ))


if __name__ == "__main__":
    main()
