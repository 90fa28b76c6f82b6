"""A raw HTTP/1.1 client for the serving benchmark: pre-encoded requests, keep-alive, asyncio.

The load generator shares the cores with the servers it measures, so its client must stay
cheap: every request is encoded once, and a connection only writes those bytes and reads the
status line, the headers and the body (sized, chunked, or up to the close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

HOST = "127.0.0.1"


def post(path: str, body: Mapping[str, Any]) -> bytes:
    """A complete HTTP/1.1 POST, encoded once so the load loop only writes bytes."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def get(path: str) -> bytes:
    """A complete HTTP/1.1 GET (the probes)."""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


class Connection:
    """One keep-alive connection; a failed exchange answers status 0 and reconnects next time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=2**20)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Write one request and read its status line, headers and body."""
        try:
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(request)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                end = lower.index(b"\r\n", at + 2)
                body = await self.reader.readexactly(int(lower[at + 17 : end]))
            elif b"\r\ntransfer-encoding: chunked" in lower:
                body = await self._chunked()
            else:
                body = await self.reader.read()
                await self.close()
            if b"\r\nconnection: close" in lower:
                await self.close()
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            return 0, b""

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append((await self.reader.readexactly(size + 2))[:-2])


async def fetch(port: int, request: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on a fresh connection (the consistency checks)."""
    conn = Connection(port)
    try:
        async with asyncio.timeout(timeout):
            return await conn.send(request)
    except TimeoutError:
        return 0, b""
    finally:
        await conn.close()
