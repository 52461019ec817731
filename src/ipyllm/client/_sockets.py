"""Sockets for httpx on asyncio's own transports: a streamed answer costs half the CPU.

httpx reaches sockets through httpcore, and httpcore by default through anyio, whose every
read enters a cancel scope with its own timer and exception mapping. A streamed answer is
one read per token, so that is most of what a stream costs the kernel: measured over
1,000 streams of 55 chunks, 4.8 ms of CPU per stream through anyio, 2.2 ms through the
backend below (benchmarks/bench_map.py). httpcore lets a client bring its own network
backend; this one keeps what the socket delivered in a buffer filled by asyncio's
protocol callbacks, and a read waits on a plain future only when that buffer is empty.

:class:`SocketTransport` is httpx's transport over it: httpcore's connection pool (HTTP/1.1,
keep-alive, TLS), requests and responses translated, httpcore's errors raised as httpx's,
each chained to the socket error that caused it. Proxies from the environment are
httpx's own mounts, untouched; this transport serves the direct connections.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

_HIGH_WATER = 256 * 1024  # stop reading from the socket while this much waits unread...
_LOW_WATER = 64 * 1024  # ...and start again below this

# httpcore's errors and the httpx errors a client catches; subclasses before their bases.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class _Buffered(asyncio.Protocol):
    """What the socket delivered, kept until read; wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []  # as received: one chunk is handed over uncopied
        self.size = 0
        self.ended = False  # the peer closed its side, or the connection was lost
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.writable: asyncio.Future[None] | None = None  # set while the socket is full

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _within(awaitable: asyncio.Future[Any], timeout: float | None) -> None:
    """Wait for ``awaitable``; TimeoutError after ``timeout`` seconds (None: no limit).

    A timer that fails the future, not ``wait_for``: no task per wait, and a cancellation
    of the caller stays a cancellation. (Writes wait rarely; reads keep one timer.)
    """
    if timeout is None:
        await awaitable
        return
    loop = asyncio.get_running_loop()

    def expire() -> None:
        if not awaitable.done():
            awaitable.set_exception(TimeoutError())

    timer = loop.call_later(timeout, expire)
    try:
        await awaitable
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Buffered) -> None:
        self._transport = transport
        self._protocol = protocol
        self._read_deadline: float | None = None  # of the read waiting now
        self._read_timer: asyncio.TimerHandle | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.chunks and not protocol.ended:
            loop = asyncio.get_running_loop()
            waiter = protocol.waiter = loop.create_future()
            if timeout is not None:
                self._read_deadline = deadline = loop.time() + timeout
                timer = self._read_timer
                if timer is None or timer.when() > deadline:
                    if timer is not None:
                        timer.cancel()
                    self._read_timer = loop.call_at(deadline, self._read_timer_rang)
            try:
                await waiter
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out waiting for the server") from None
            finally:
                protocol.waiter = None
                self._read_deadline = None
        chunks = protocol.chunks
        if not chunks:
            if protocol.error is not None:
                raise httpcore.ReadError(str(protocol.error)) from protocol.error
            return b""
        chunk = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(chunk) > max_bytes:
            protocol.chunks = [chunk[max_bytes:]]
            chunk = chunk[:max_bytes]
        else:
            protocol.chunks = []
        protocol.size -= len(chunk)
        if protocol.paused and protocol.size < _LOW_WATER:
            protocol.paused = False
            self._transport.resume_reading()
        return chunk

    def _read_timer_rang(self) -> None:
        """Fail the waiting read if its deadline has passed, else ring again at it.

        One timer per connection, moved only when it rings: a stream reads once per
        token, and a timer set and cancelled per read was a tenth of a stream's CPU.
        """
        self._read_timer = None
        waiter, deadline = self._protocol.waiter, self._read_deadline
        if waiter is None or waiter.done() or deadline is None:
            return  # no read waits: the next one sets the timer again
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            waiter.set_exception(TimeoutError())
        else:
            self._read_timer = loop.call_at(deadline, self._read_timer_rang)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        protocol = self._protocol
        if protocol.ended or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed") from protocol.error
        if not buffer:
            return
        self._transport.write(buffer)
        if protocol.writable is not None:  # the socket's buffer is full: wait for it to drain
            try:
                await _within(asyncio.shield(protocol.writable), timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out sending to the server") from None
            if protocol.error is not None:
                raise httpcore.WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._transport.close()
        # The transport closes its socket on the loop's next turn: wait for it, so that the
        # connection is closed when this returns (a Stop followed by blocking code, such as
        # reading the server's log, still lets the server see the client leave).
        await asyncio.sleep(0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        with _connect_errors(timeout):
            transport = await loop.start_tls(
                self._transport,
                self._protocol,
                ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks before reusing an idle connection: readable then means closed.
            return bool(self._protocol.chunks) or self._protocol.ended
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


@contextmanager
def _connect_errors(timeout: float | None) -> Iterator[None]:
    try:
        yield
    except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct before Python 3.11
        raise httpcore.ConnectTimeout("the connection timed out") from exc
    except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError; named for clarity
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections made with asyncio's ``create_connection``, read as :class:`AsyncioStream`."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        with _connect_errors(timeout):
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(_Buffered, host, port, local_addr=local), timeout
            )
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        with _connect_errors(timeout):
            transport, protocol = await asyncio.wait_for(
                loop.create_unix_connection(_Buffered, path), timeout
            )
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_CORE_ERRORS = tuple(core for core, _ in _ERRORS)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except _CORE_ERRORS as exc:
        raise _mapped(exc, request) from exc


def _mapped(exc: Exception, request: httpx.Request) -> httpx.HTTPError:
    for core, ours in _ERRORS:
        if isinstance(exc, core):
            if issubclass(ours, httpx.RequestError):
                return ours(str(exc), request=request)
            return ours(str(exc))
    raise AssertionError(f"unmapped httpcore error {type(exc).__name__}")  # pragma: no cover


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, body: Any, request: httpx.Request) -> None:
        self._body = body
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._body:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._body, "aclose"):
            await self._body.aclose()


class SocketTransport(httpx.AsyncBaseTransport):
    """httpx's transport for direct connections, over :class:`AsyncioBackend`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
