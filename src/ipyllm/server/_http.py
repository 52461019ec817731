"""A minimal HTTP/1.1 server for the teaching app: one request per connection.

Streamed bodies go out as one HTTP chunk per piece the app yields, flushed at once,
so ``curl -N`` shows the answer growing. While a body is being sent the server also
watches the socket, so a client that goes away is noticed within milliseconds even
when the app is sleeping between tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipyllm.server._app import LogRecord, TeachingApp
from ipyllm.server._errors import reason_phrase
from ipyllm.server._responses import Response, ResponseBody

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TeachingServer:
    """Serves a :class:`TeachingApp` on ``host:port`` (port 0 picks a free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fixtures_dir: str | Path | None = None,
        token_rate: float = 40.0,
        first_token_latency: float = 0.3,
        on_log: Callable[[LogRecord], None] | None = None,
        keep_bodies: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.app = TeachingApp(
            fixtures_dir, token_rate, first_token_latency, on_log, keep_bodies=keep_bodies
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, limit=_MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Streams may be stalled for an hour: cut them rather than wait.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> TeachingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # With a zero high-water mark drain() waits until the kernel has every byte,
        # so a drop after N bytes really delivers those N bytes first.
        writer.transport.set_write_buffer_limits(high=0)
        peer = writer.get_extra_info("peername")
        peer_name = f"{peer[0]}:{peer[1]}" if peer else ""
        try:
            method, target, headers, body = await _read_request(reader, writer)
        except _BadRequest as exc:
            await _send_plain(writer, exc.status, f"{exc}\n")
            return
        if method == "OPTIONS":  # a browser's preflight; not a request of the log
            await _send_preflight(writer, headers)
            return
        response = await self.app.handle(method, target, headers, body, peer=peer_name)
        await self._send(response, reader, writer)

    async def _send(
        self, response: Response, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        headers = [(k, v) for k, v in response.headers if k.lower() != "connection"]
        chunked = not any(k.lower() == "content-length" for k, _ in headers)
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        head = _head(response.status, response.reason, headers)
        pump = asyncio.ensure_future(_pump(response.body, writer, head, chunked))
        hangup = asyncio.ensure_future(_wait_for_hangup(reader))
        try:
            await asyncio.wait({pump, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            pump.cancel()  # if the client left first, this stops the generation at once
            (outcome,) = await asyncio.gather(pump, return_exceptions=True)
            await response.body.aclose()  # logs "disconnect" unless the body ended itself
        if outcome is not None:  # cancelled, dropped on purpose, or failed: no clean end
            writer.transport.abort()


async def _pump(
    body: ResponseBody, writer: asyncio.StreamWriter, head: bytes, chunked: bool
) -> None:
    """Write the head and every body piece as soon as the app yields it."""
    writer.write(head)
    await writer.drain()
    async for piece in body:
        if not piece:
            continue  # an empty chunk would end a chunked body early
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def _wait_for_hangup(reader: asyncio.StreamReader) -> None:
    """Return when the client closes or resets its side of the connection."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass  # a well-behaved client sends nothing more; discard anything it does


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[str, str, dict[str, str], bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request head too large") from None
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, f"malformed request line: {request_line!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise _BadRequest(400, "malformed header line")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(411, "send the request body with a content-length header")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise _BadRequest(400, f"bad content-length: {length_text!r}")
    length = int(length_text)
    if length > _MAX_BODY:
        raise _BadRequest(413, "request body too large")
    if length and headers.get("expect", "").lower() == "100-continue":
        # curl waits a second for this before sending bodies over 1 KB.
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    body = await reader.readexactly(length)
    return method, target, headers, body


# Any page may read the answers: a notebook in JupyterLite runs in a page of its own origin
# and reaches the server with fetch. Nothing here is secret (the answers are the demo's).
_CORS = [("access-control-allow-origin", "*"), ("access-control-expose-headers", "*")]


def _head(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    """A response's head: any page may read the response (CORS), and the connection closes."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in [*headers, *_CORS, ("connection", "close")]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


async def _send_preflight(writer: asyncio.StreamWriter, headers: dict[str, str]) -> None:
    """Allow what the browser asks to send: ``*`` would not cover the Authorization header."""
    allowed = [
        ("access-control-allow-methods", "GET, POST, OPTIONS"),
        ("access-control-allow-headers", headers.get("access-control-request-headers", "*")),
        ("access-control-max-age", "600"),
        ("content-length", "0"),
    ]
    if headers.get("access-control-request-private-network") == "true":  # a public page
        allowed.append(("access-control-allow-private-network", "true"))
    writer.write(_head(204, "No Content", allowed))
    await writer.drain()


async def _send_plain(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    data = text.encode()
    plain = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(data)))]
    writer.write(_head(status, reason_phrase(status), plain) + data)
    await writer.drain()


class ServerThread:
    """A :class:`TeachingServer` on its own event loop in a daemon thread.

    For synchronous code and for clients in other processes (Jupyter kernels).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **app_kwargs: Any) -> None:
        self.server = TeachingServer(host, port, **app_kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self) -> TeachingApp:
        return self.server.app

    def start(self) -> None:
        """Return once the server is listening (re-raising a failure to bind)."""
        started = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # handed over to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="ipyllm-teaching-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
