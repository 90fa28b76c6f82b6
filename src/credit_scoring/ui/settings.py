"""Where the screen finds the service and the drift report, and where it listens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """The screen's settings as values; ``app_gradio.py`` reads them from the environment."""

    service_url: str = "http://127.0.0.1:3000"
    host: str = "127.0.0.1"  # this machine only
    port: int = 7860
    timeout: float = 30.0  # seconds to wait for an answer from the service
    api_key: str | None = field(default=None, repr=False)  # sent as X-API-Key when set
    drift_json: Path = Path("reports/drift.json")  # its full report is the .html file beside it
