"""Reading the declared artifacts that one stage writes and another (or the service) reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from credit_scoring.errors import ArtifactError

T = TypeVar("T")


def parse_json(text: str, what: str, build: Callable[[Mapping[str, Any]], T]) -> T:
    """``build`` the declared type from JSON text; a malformed one is an ArtifactError naming it."""
    try:
        return build(json.loads(text))
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{what}: not readable ({err!r})") from None
