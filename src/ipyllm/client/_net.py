"""Small network helpers shared by the client's modules."""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from functools import cache
from typing import cast
from urllib.request import getproxies

import httpx

from .._text import snippet
from ._sockets import SocketTransport


@cache
def ssl_context() -> ssl.SSLContext:
    # Loading CA certificates costs milliseconds; share one context across clients.
    return ssl.create_default_context()


def default_transport(limits: httpx.Limits | None = None) -> httpx.AsyncBaseTransport | None:
    """The transport to use when none is given: the browser's fetch in Pyodide; sockets
    on asyncio's own transports (half the CPU per streamed token of httpx's default, see
    ``_sockets``); or None, httpx's own, where the environment names a proxy: a client
    given a transport ignores the proxy variables, and httpx's own reads them (and
    ``NO_PROXY``) as users expect."""
    if sys.platform == "emscripten":
        from ._fetch import FetchTransport

        return FetchTransport()
    if getproxies():
        return None
    return SocketTransport(ssl_context(), limits)


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what names a server in a message."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace")


async def read_some(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of a response body; a body cut short still says something."""
    body = bytearray()
    try:
        async with aclosing(body_chunks(response)) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) >= limit:
                    break
    except httpx.TransportError:
        pass
    return bytes(body[:limit])


def snippet_of(body: bytes) -> str:
    """A short quoted excerpt of a response body."""
    return snippet(text_of(body))


def body_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body's chunks, typed as the generator httpx returns, so it can be closed early."""
    return cast(AsyncGenerator[bytes, None], response.aiter_bytes())
