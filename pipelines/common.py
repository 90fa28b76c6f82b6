"""What every stage entry point shares: its parameters, logging, and a clean exit on bad input."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from credit_scoring.schema import SchemaError
from credit_scoring.sources import SourceError

log = logging.getLogger("pipelines")


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def run(main: Callable[[], None]) -> None:
    """Run a stage; bad input ends it with one clear line and exit code 1, not a traceback."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        main()
    except (SchemaError, SourceError) as err:
        log.error("%s", err)
        sys.exit(1)
