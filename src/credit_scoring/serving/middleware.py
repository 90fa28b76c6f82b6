"""What every HTTP request passes before an endpoint sees it: the key, the media type, the size.

Plain ASGI middleware, so each refusal is answered before BentoML parses a byte of the body,
in the API's error shape (:func:`credit_scoring.serving.api.refusal`), never as a 5xx. The
document middleware serves the service's own OpenAPI document at ``/docs.json``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.responses import Response

from credit_scoring.serving.api import refusal
from credit_scoring.serving.requests import Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes and the metrics scraper must answer without the key: they carry no personal data.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
KEY_HEADER = "X-API-Key"
JSON = b"application/json"


class ApiKey:
    """401 for a request without the service's API key, except on :data:`OPEN_PATHS`.

    The key is compared as SHA-256 digests with :func:`hmac.compare_digest`: equal lengths, a
    constant-time comparison, so the answer's timing tells nothing of the key.
    """

    def __init__(self, app: App, key: str) -> None:
        self.app, self._digest = app, hashlib.sha256(key.encode("utf-8")).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(KEY_HEADER.lower().encode("ascii"), b"")
        if hmac.compare_digest(hashlib.sha256(sent).digest(), self._digest):
            await self.app(scope, receive, send)
            return
        problem = "missing API key" if not sent else "wrong API key"
        response = refusal(
            [Problem(("header", KEY_HEADER), f"{problem}: send the key in {KEY_HEADER}", "key")],
            status=401,
        )
        await response(scope, receive, send)


class JsonOnly:
    """415 for a POST whose body is declared as anything but JSON (no declaration means JSON).

    BentoML would read a form as keyword arguments and fail on a multipart body without a
    boundary with a 500; every endpoint of this service takes one JSON object.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            declared = dict(scope["headers"]).get(b"content-type")
            if declared is not None and declared.split(b";")[0].strip().lower() != JSON:
                media = declared.decode("latin-1")
                response = refusal(
                    [
                        Problem(
                            ("header", "Content-Type"),
                            f"{media!r} is not supported: send a JSON object as application/json",
                            "unsupported_media_type",
                        )
                    ],
                    status=415,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a body over ``max_bytes``, counted as it arrives, chunked or not.

    A declared ``Content-Length`` over the limit is refused before a byte is read (the server
    never reads past a declared length). A body without one (chunked) is read here, counting,
    and handed on whole; BentoML reads every body whole before parsing it, so this holds
    nothing longer than it would.
    """

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) <= self.max_bytes:
                await self.app(scope, receive, send)
            else:
                await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = refusal(
            [Problem(("body",), f"over the limit of {self.max_bytes} bytes", "too_large")],
            status=413,
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever the server sends next."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class Document:
    """Serves ``GET /docs.json`` from ``build`` (called once, on the first request for it).

    BentoML's own document declares errors it never sends and leaves out those it does; this
    one is built from the models that validate each request (:mod:`credit_scoring.serving.openapi`).
    """

    def __init__(self, app: App, build: Callable[[], dict[str, Any]]) -> None:
        self.app, self._build, self._body = app, build, b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/docs.json" and scope["method"] == "GET":
            if not self._body:
                self._body = orjson.dumps(self._build())
            await Response(self._body, media_type="application/json")(scope, receive, send)
            return
        await self.app(scope, receive, send)
