"""Responses as the app hands them to transports, and the builders and body wrappers.

A body is an async iterator of byte pieces. Transports send each piece as soon as it
comes and must ``aclose()`` the body when they stop, finished or not, so the log can
tell a complete answer from a client that left and from a connection we cut.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from ipyllm.server._errors import error_body, proxy_error_page, reason_phrase
from ipyllm.server._options import RequestOptions

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
_SSE_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(rb"\n")


class DropConnection(Exception):
    """Raised by a response body: the transport must cut the connection abruptly."""


class ResponseBody(Protocol):
    """An async iterator of body pieces that transports must ``aclose()`` when done."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: ResponseBody


class LoggedBody:
    """Wraps a body to log how it ended: complete, drop (ours), or disconnect (theirs)."""

    def __init__(self, pieces: ResponseBody, finish: Callable[[str, int], None]) -> None:
        self._pieces = pieces
        self._finish = finish
        self._sent = 0
        self._ended = False

    def __aiter__(self) -> LoggedBody:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        try:
            piece = await self._pieces.__anext__()
        except StopAsyncIteration:
            self._end("complete")
            raise
        except Exception:  # DropConnection, or a bug: either way we cut the connection
            self._end("drop")
            raise
        self._sent += len(piece)
        return piece

    async def aclose(self) -> None:
        """Transports call this when they stop reading, finished or not."""
        if not self._ended:
            self._end("disconnect")
        await self._pieces.aclose()

    def _end(self, event: str) -> None:
        self._ended = True
        self._finish(event, self._sent)


# -- response builders ---------------------------------------------------------------------


def reshaped(response: Response, options: RequestOptions) -> Response:
    """Apply the byte-level options (split, delay, drop_after_bytes) to any body."""
    if options.split == "event":
        content_type = next((v for k, v in response.headers if k.lower() == "content-type"), "")
        ends = _LINE_END if "ndjson" in content_type else _SSE_EVENT_END
        response.body = _per_event(response.body, ends, options.delay)
    elif options.split is not None:
        response.body = _resplit(response.body, options.split, options.seed, options.delay)
    if options.drop_after_bytes is not None:
        response.body = _cut_after(response.body, options.drop_after_bytes)
    return response


async def _resplit(
    body: ResponseBody, size: int | str, seed: int, delay: float
) -> AsyncGenerator[bytes, None]:
    sizes = random.Random(seed)
    first = True
    async with aclosing(body):
        async for piece in body:
            start = 0
            while start < len(piece):
                step = sizes.randint(1, 16) if size == "random" else int(size)
                if not first:
                    await asyncio.sleep(delay)
                first = False
                yield piece[start : start + step]
                start += step


async def _per_event(
    body: ResponseBody, ends: re.Pattern[bytes], delay: float
) -> AsyncGenerator[bytes, None]:
    """One piece per wire event (an SSE event, or an NDJSON line), ``delay`` apart."""
    pending = b""
    first = True
    async with aclosing(body):
        async for piece in body:
            pending += piece
            start = 0
            for match in ends.finditer(pending):
                if not first:
                    await asyncio.sleep(delay)
                first = False
                yield pending[start : match.end()]
                start = match.end()
            pending = pending[start:]
    if pending:  # a body that does not end on an event boundary: the rest, as it is
        if not first:
            await asyncio.sleep(delay)
        yield pending


async def _cut_after(body: ResponseBody, limit: int) -> AsyncGenerator[bytes, None]:
    sent = 0
    async with aclosing(body):
        async for piece in body:
            room = limit - sent
            if len(piece) >= room:
                if room:
                    yield piece[:room]
                raise DropConnection
            sent += len(piece)
            yield piece


async def once(data: bytes) -> AsyncGenerator[bytes, None]:
    if data:
        yield data


def bytes_response(
    status: int, data: bytes, content_type: str, extra: list[tuple[str, str]] | None = None
) -> Response:
    headers = [("content-type", content_type), *(extra or []), ("content-length", str(len(data)))]
    return Response(status, reason_phrase(status), headers, once(data))


def json_response(status: int, payload: dict[str, Any]) -> Response:
    data = json.dumps(payload, ensure_ascii=False).encode()
    return bytes_response(status, data, "application/json")


def text_response(status: int, text: str) -> Response:
    return bytes_response(status, text.encode(), "text/plain; charset=utf-8")


def error_response(family: str, status: int, message: str | None = None) -> Response:
    return json_response(status, error_body(family, status, message))


def status_response(family: str, status: int, options: RequestOptions) -> Response:
    extra = []
    if options.retry_after is not None:
        extra.append(("retry-after", options.retry_after))
    if options.retry_after_ms is not None:
        extra.append(("retry-after-ms", str(options.retry_after_ms)))
    if options.body == "html":
        return bytes_response(status, proxy_error_page(status), "text/html", extra)
    data = b"" if options.body == "empty" else json.dumps(error_body(family, status)).encode()
    return bytes_response(status, data, "application/json", extra)


def parse_raw_http(data: bytes) -> Response:
    """A captured HTTP/1.1 response: keep status and headers, re-frame the body ourselves."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    headers = []
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() not in _HOP_BY_HOP:
            headers.append((name.strip(), value.strip()))
    headers.append(("content-length", str(len(body))))
    return Response(int(status), reason, headers, once(body))
