"""The socket transport every stream uses by default, against real servers on 127.0.0.1.

TLS with a certificate from a test authority (trusted, then not), keep-alive and a
connection the server closed while idle, bodies far larger than the socket buffers
both ways, a server that stalls, a closed port, a cancelled read, and the proxy
variables of the environment (honoured through httpx's own transport).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trustme

import ipyllm
from ipyllm.client import SocketTransport
from ipyllm.errors import HTTPStatusError
from ipyllm.server import ServerThread, demo_answer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running ``handler`` per connection; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """The request line and the body (by content-length) of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
        0,
    )
    body = bytearray()
    while len(body) < length:  # in small reads, slowly: the client's writes must wait
        body += await reader.read(min(16384, length - len(body)))
        await asyncio.sleep(0)
    return lines[0], bytes(body)


def respond(writer: asyncio.StreamWriter, body: bytes, *, close: bool = False) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
        b"content-length: %d\r\n%s\r\n" % (len(body), b"connection: close\r\n" if close else b"")
    )
    writer.write(body)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def teaching() -> AsyncIterator[ServerThread]:
    with ServerThread() as running:
        yield running


def relay_to(port: int) -> Handler:
    """A TLS front for a plain server: the bytes both ways, untouched."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    return handle


def answer_text(sse_body: bytes) -> str:
    """The text of an OpenAI stream: its deltas' contents, joined."""
    events = [line[6:] for line in sse_body.decode().splitlines() if line.startswith("data: {")]
    deltas = [json.loads(event)["choices"] for event in events]
    return "".join(choice[0]["delta"].get("content") or "" for choice in deltas if choice)


def chain(exc: BaseException | None) -> list[BaseException]:
    """An error and its causes (httpcore's pool re-raises ``from None``: the context counts)."""
    causes = []
    while exc is not None and len(causes) < 10:
        causes.append(exc)
        exc = exc.__cause__ or exc.__context__
    return causes


def question(text: str) -> dict[str, object]:
    return {"model": "demo", "stream": True, "messages": [{"role": "user", "content": text}]}


async def test_tls_stream_is_read_whole_with_a_trusted_certificate(
    authority: trustme.CA, teaching: ServerThread
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    async with serving(relay_to(teaching.server.port), server_tls) as port:
        transport = SocketTransport(client_tls)
        async with httpx.AsyncClient(transport=transport) as client:
            url = f"https://localhost:{port}/v1/chat/completions"
            async with client.stream("POST", url, json=question("Over TLS")) as response:
                assert response.status_code == 200
                assert response.extensions["network_stream"].get_extra_info("ssl_object")
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body.endswith(b"data: [DONE]\n\n")
    assert answer_text(body) == demo_answer([{"role": "user", "content": "Over TLS"}])


async def test_tls_with_an_untrusted_certificate_fails_to_connect(authority: trustme.CA) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    transport = SocketTransport(ssl.create_default_context())
    async with serving(never, server_tls) as port, httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.ConnectError) as caught:
            await c.get(f"https://localhost:{port}/")
    assert any(isinstance(cause, ssl.SSLCertVerificationError) for cause in chain(caught.value))


def test_a_chat_over_https_checks_the_certificate_against_the_system_store(
    authority: trustme.CA, teaching: ServerThread, tmp_path: Path
) -> None:
    """End to end, as a user runs it: ipyllm's own TLS settings, told of the test
    authority the usual way (SSL_CERT_FILE); then the same without it."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))

    async def run_chats() -> list[str]:
        async with serving(relay_to(teaching.server.port), server_tls) as port:
            code = (
                "import asyncio, ipyllm\n"
                "async def main():\n"
                f"    s = ipyllm.stream('Secure', provider='openai', model='demo', api_key='k',"
                f" base_url='https://localhost:{port}/v1', max_retries=0)\n"
                "    try:\n"
                "        async for _ in s: pass\n"
                "        print('RESULT', repr(s.transcript.text))\n"
                "    except ipyllm.errors.IpyllmError as e:\n"
                "        print('RESULT ERROR', e)\n"
                "asyncio.run(main())\n"
            )
            outputs = []
            for ca in (str(ca_file), None):
                env = {**os.environ, "SSL_CERT_FILE": ca} if ca else dict(os.environ)
                env.pop("SSL_CERT_FILE", None) if ca is None else None
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", code, env=env, stdout=subprocess.PIPE
                )
                out, _ = await process.communicate()
                outputs.append(out.decode().strip().removeprefix("RESULT "))
            return outputs

    trusted, untrusted = asyncio.run(run_chats())
    assert trusted == repr(demo_answer([{"role": "user", "content": "Secure"}]))
    assert untrusted.startswith("ERROR could not reach"), untrusted
    assert "certificate" in untrusted, untrusted


async def test_keep_alive_reuses_a_connection_and_survives_an_idle_close() -> None:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        served = 0
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            served += 1
            respond(writer, b"request %d" % served)
            await writer.drain()
            if served == 2:  # the server ends the connection while the client keeps it idle
                await asyncio.sleep(0.05)
                writer.close()
                break

    async with serving(handle) as port:
        transport = SocketTransport(ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport) as client:
            url = f"http://127.0.0.1:{port}/"
            first, second = (await client.get(url)).content, (await client.get(url)).content
            await asyncio.sleep(0.2)  # the close arrives while the connection is idle
            third = (await client.get(url)).content
    assert (first, second, third) == (b"request 1", b"request 2", b"request 1")
    assert len(connections) == 2


async def test_bodies_larger_than_the_socket_buffers_arrive_whole_both_ways() -> None:
    upload = os.urandom(12 << 20)
    download = os.urandom(9 << 20)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        respond(writer, hashlib.sha256(body).digest() + download, close=True)
        await writer.drain()
        writer.close()

    async with serving(handle) as port:
        transport = SocketTransport(ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport, timeout=30) as client:
            url = f"http://127.0.0.1:{port}/"
            async with client.stream("POST", url, content=upload) as response:
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received += chunk
                    await asyncio.sleep(0)  # a slow reader: the socket fills, reading pauses
    assert received[:32] == hashlib.sha256(upload).digest()
    assert received[32:] == download


async def test_a_server_that_stalls_times_out_and_a_closed_port_is_refused() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        # A steady trickle, longer in all than the read timeout but never a gap as long,
        # then silence: only the silence times out.
        for _ in range(8):
            writer.write(b"5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        await asyncio.sleep(5)

    timeout = httpx.Timeout(5, read=0.3)
    async with serving(stall) as port:
        transport = SocketTransport(ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                chunks = []
                with pytest.raises(httpx.ReadTimeout):
                    async for chunk in response.aiter_bytes():
                        chunks.append(chunk)
            assert b"".join(chunks) == b"hello" * 8
    # The port is closed now.
    async with httpx.AsyncClient(transport=SocketTransport(ssl.create_default_context())) as c:
        with pytest.raises(httpx.ConnectError) as caught:
            await c.get(f"http://127.0.0.1:{port}/")
    assert any(isinstance(cause, ConnectionRefusedError) for cause in chain(caught.value))


async def test_a_cancelled_read_closes_the_connection() -> None:
    closed = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"6\r\ntoken \r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except (ConnectionError, OSError):
            closed.set()

    async with serving(endless) as port:
        transport = SocketTransport(ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport) as client:

            async def read_forever() -> None:
                async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                    async for _ in response.aiter_bytes():
                        pass

            reading = asyncio.ensure_future(read_forever())
            await asyncio.sleep(0.2)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            await asyncio.wait_for(closed.wait(), 5)  # the server's next write failed


async def test_proxy_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client given a transport ignores HTTP_PROXY; ipyllm then uses httpx's own."""
    seen: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, _ = await read_request(reader)
        seen.append(request_line)
        page = b"<html><body><h1>502 Bad Gateway</h1>from the test proxy</body></html>"
        writer.write(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(page), page)
        )
        await writer.drain()
        writer.close()

    async with serving(proxy) as port:
        for name in ("HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        chat = ipyllm.stream(
            "Through the proxy",
            provider="openai",
            model="demo",
            api_key="k",
            base_url="http://ipyllm.invalid/v1",
            max_retries=0,
        )
        with pytest.raises(HTTPStatusError) as caught:
            async for _ in chat:
                pass
    assert seen == ["POST http://ipyllm.invalid/v1/chat/completions HTTP/1.1"]
    assert "502 Bad Gateway from the test proxy" in str(caught.value), caught.value


async def test_a_closed_stream_has_closed_its_connection_when_aclose_returns(
    teaching: ServerThread,
) -> None:
    """Code that blocks right after a Stop (the teaching notebook reads the server's log)
    must not hold the socket open: the server sees the client leave with the loop blocked."""
    answer = ipyllm.stream(
        "Tell me a long story.", provider="openai", model="demo", api_key="k",
        base_url=f"{teaching.url}/with/rate=20/v1",
    )  # fmt: skip
    async for _ in answer:
        if len(answer.transcript.text) > 40:
            break
    await answer.aclose()
    record = teaching.app.wait_for(lambda r: r["event"] == "disconnect", 3)  # blocks the loop
    assert record is not None and answer.transcript.status == "stopped"
