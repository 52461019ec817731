"""Connections shared by the answers of one batch (a map, a comparison), and only by them.

A map of a thousand rows would otherwise open a client and a TCP (and TLS) connection per
row: a quarter of its CPU. Inside :func:`shared_connections`, streams to the network reuse
one client per timeout setting, with its keep-alive connections; the scope closes them all
when the batch ends, so nothing stays open after it. A stream that is stopped mid-answer
still closes its own connection: a response read only in part is never reused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

import httpx

from ._net import default_transport, ssl_context

_pool: ContextVar[dict[tuple[float | None, ...], httpx.AsyncClient] | None] = ContextVar(
    "ipyllm_connection_pool", default=None
)


@asynccontextmanager
async def shared_connections() -> AsyncIterator[None]:
    """Streams started in this scope (and in tasks created in it) share their clients."""
    clients: dict[tuple[float | None, ...], httpx.AsyncClient] = {}
    token = _pool.set(clients)
    try:
        yield
    finally:
        _pool.reset(token)
        for client in clients.values():
            await client.aclose()


def shared_client(timeout: httpx.Timeout) -> httpx.AsyncClient | None:
    """The scope's client for these timeouts (made on first use), or None outside a scope."""
    clients = _pool.get()
    if clients is None:
        return None
    key = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    client = clients.get(key)
    if client is None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        client = clients[key] = httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            transport=default_transport(limits),
            verify=ssl_context(),
        )
    return client
