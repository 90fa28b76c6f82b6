"""The failures a user can cause and fix: each is reported in one line, with a non-zero exit.

Every command (a stage, the store import, the batch check) catches :class:`InputError` and
nothing else, so a bug still shows its traceback while bad input never does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class InputError(Exception):
    """A table, file, source, spec or package is wrong; the message names which, and where."""


class ArtifactError(InputError, ValueError):
    """A file one stage wrote and another reads is not what its declared type says."""


class ConfigError(InputError, ValueError):
    """A parameter names something that does not exist (a column, a group, a level)."""


class SourceError(InputError, RuntimeError):
    """A source failed for a reason outside the tables' content: path, archive, credentials, net."""


class ClusterError(InputError, RuntimeError):
    """The Dask cluster cannot run a stage: unreachable, other package versions, a worker died."""


def exit_on_input_error(command: Callable[[], T], log: logging.Logger) -> T:
    """Run a command and return its result; an :class:`InputError` ends it with one logged line
    and exit code 1.

    The error exit skips interpreter teardown (``os._exit``): with the native thread pools of
    pyarrow and polars still alive, teardown after an exception sometimes aborts the process
    ("terminate called without an active exception", exit -6) instead of returning 1.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return command()
    except InputError as err:
        log.error("%s", err)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
