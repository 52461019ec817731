"""The browser transport, ``ipyllm.client.FetchTransport``, on CPython against a stand-in browser.

The stand-in ``js`` and ``pyodide.ffi`` modules answer ``fetch`` from the teaching server's app
in-process and behave as a browser does where it matters here: the body arrives piece by piece
through a ``ReadableStream`` reader, headers a page may not set are the browser's, the body is
already decoded, and aborting the ``AbortController`` ends the body (the app sees the client
leave) and makes a pending read reject. tests/browser/test_lite.py runs the real thing in
Chromium; these pin the details.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import httpx
import pytest

import ipyllm
from ipyllm.client import FetchTransport
from ipyllm.server import ServerThread, TeachingApp


class JsException(Exception):
    """What a rejected promise raises in Pyodide."""


class FakeSignal:
    def __init__(self) -> None:
        self.aborted = asyncio.Event()


class FakeAbortController:
    instances: ClassVar[list[FakeAbortController]] = []

    def __init__(self) -> None:
        self.signal = FakeSignal()
        self.aborted = False
        FakeAbortController.instances.append(self)

    @classmethod
    def new(cls) -> FakeAbortController:
        return cls()

    def abort(self) -> None:
        self.aborted = True
        self.signal.aborted.set()


class FakeChunk:
    def __init__(self, data: bytes | None) -> None:
        self.done = data is None
        self.value = None if data is None else types.SimpleNamespace(to_bytes=lambda: data)


class FakeReader:
    def __init__(self, body: AsyncIterator[bytes], signal: FakeSignal, close: Any) -> None:
        self._body = body
        self._signal = signal
        self._close = close

    async def read(self) -> FakeChunk:
        next_piece = asyncio.ensure_future(self._body.__anext__())
        aborted = asyncio.ensure_future(self._signal.aborted.wait())
        done, _ = await asyncio.wait({next_piece, aborted}, return_when=asyncio.FIRST_COMPLETED)
        if aborted in done:
            next_piece.cancel()
            await self._close()
            raise JsException("AbortError: The user aborted a request.")
        aborted.cancel()
        try:
            return FakeChunk(next_piece.result())
        except StopAsyncIteration:
            return FakeChunk(None)

    def releaseLock(self) -> None:
        pass


class FakeBrowser:
    """``fetch`` answered by a TeachingApp, recording what the page sent."""

    def __init__(self, app: TeachingApp, *, fail: bool = False, delay: float = 0.0) -> None:
        self.app = app
        self.fail = fail
        self.delay = delay
        self.sent: list[dict[str, Any]] = []
        self.extra_response_headers: list[tuple[str, str]] = []
        self.watchers: list[asyncio.Future[None]] = []

    async def fetch(self, url: str, options: dict[str, Any]) -> Any:
        self.sent.append(options)
        if self.fail:
            raise JsException("TypeError: Failed to fetch")
        await asyncio.sleep(self.delay)
        parsed = httpx.URL(url)
        headers = {name.lower(): value for name, value in options["headers"]}
        body = bytes(options.get("body") or b"")
        response = await self.app.handle(
            options["method"], parsed.raw_path.decode(), headers, body, peer="browser"
        )
        pieces = response.body
        reader = FakeReader(pieces, options["signal"], pieces.aclose)

        async def close_when_aborted() -> None:  # the browser drops the connection
            await options["signal"].aborted.wait()
            await pieces.aclose()

        self.watchers.append(asyncio.ensure_future(close_when_aborted()))
        all_headers = [*response.headers, *self.extra_response_headers]
        return types.SimpleNamespace(
            status=response.status,
            statusText=response.reason,
            headers=types.SimpleNamespace(entries=lambda: iter(all_headers)),
            body=types.SimpleNamespace(getReader=lambda: reader),
        )


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBrowser]:
    app = TeachingApp(token_rate=200, first_token_latency=0)
    fake = FakeBrowser(app)
    js = types.ModuleType("js")
    js.fetch = lambda url, options: fake.fetch(url, options)  # type: ignore[attr-defined]
    js.AbortController = FakeAbortController  # type: ignore[attr-defined]
    js.Object = types.SimpleNamespace(fromEntries=dict)  # type: ignore[attr-defined]
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.JsException = JsException  # type: ignore[attr-defined]
    ffi.to_js = lambda value, dict_converter=None: value  # type: ignore[attr-defined]
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "js", js)
    monkeypatch.setitem(sys.modules, "pyodide", pyodide)
    monkeypatch.setitem(sys.modules, "pyodide.ffi", ffi)
    FakeAbortController.instances.clear()
    yield fake


def client(timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=FetchTransport(), base_url="http://127.0.0.1:8765", timeout=timeout or 10
    )


CHAT = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


async def test_the_body_streams_piece_by_piece(browser: FakeBrowser) -> None:
    browser.app.token_rate = 20.0
    path = "/with/words=30/v1/chat/completions"
    async with client() as http, http.stream("POST", path, json=CHAT) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        arrivals = []
        async for piece in r.aiter_bytes():
            arrivals.append((asyncio.get_running_loop().time(), piece))
    assert len(arrivals) > 10
    assert arrivals[-1][0] - arrivals[0][0] > 0.5  # spread over the answer, not all at the end
    assert b"".join(piece for _, piece in arrivals).rstrip().endswith(b"data: [DONE]")


async def test_headers_the_browser_sets_are_left_to_it(browser: FakeBrowser) -> None:
    async with client() as http:
        response = await http.post("/v1/chat/completions", json={**CHAT, "stream": False})
    sent = {name.lower() for name, _ in browser.sent[0]["headers"]}
    forbidden = {"host", "content-length", "accept-encoding", "user-agent", "connection"}
    assert forbidden.isdisjoint(sent)
    assert "content-type" in sent
    assert browser.sent[0]["credentials"] == "omit" and browser.sent[0]["cache"] == "no-store"
    assert response.json()["choices"][0]["message"]["content"]


async def test_a_decoded_body_is_not_decoded_again(browser: FakeBrowser) -> None:
    browser.extra_response_headers = [("content-encoding", "gzip"), ("content-length", "3")]
    async with client() as http:
        response = await http.post("/v1/chat/completions", json={**CHAT, "stream": False})
    assert "content-encoding" not in response.headers
    assert response.json()["object"] == "chat.completion"


async def test_anthropic_requests_ask_for_browser_access(browser: FakeBrowser) -> None:
    async with client() as http:
        await http.post(
            "/v1/messages",
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
            json={"model": "demo", "max_tokens": 10, "messages": CHAT["messages"]},
        )
        await http.post("/v1/chat/completions", json={**CHAT, "stream": False})
    anthropic, openai = (dict(sent["headers"]) for sent in browser.sent)
    assert anthropic["anthropic-dangerous-direct-browser-access"] == "true"
    assert "anthropic-dangerous-direct-browser-access" not in openai


async def test_closing_the_response_aborts_the_fetch(browser: FakeBrowser) -> None:
    browser.app.token_rate = 20.0
    path = "/with/words=400/v1/chat/completions"
    async with client() as http, http.stream("POST", path, json=CHAT) as r:
        async for _ in r.aiter_bytes():
            break  # a Stop after the first piece
    assert FakeAbortController.instances[-1].aborted
    record = await asyncio.to_thread(
        browser.app.wait_for, lambda r: r.get("event") == "disconnect", 5.0
    )
    assert record is not None, browser.app.log


async def test_cancelling_the_reader_aborts_the_fetch(
    browser: FakeBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser.app.token_rate = 20.0
    monkeypatch.setattr(sys, "platform", "emscripten")  # in Pyodide: the answer uses fetch
    answer = ipyllm.stream("hi", base_url="http://127.0.0.1:8765/with/words=400/v1")

    async def read() -> None:
        async for _ in answer:
            pass

    task = asyncio.create_task(read())
    while len(answer.transcript.text) < 20:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert answer.transcript.status == "stopped"
    assert FakeAbortController.instances[-1].aborted
    record = await asyncio.to_thread(
        browser.app.wait_for, lambda r: r.get("event") == "disconnect", 5.0
    )
    assert record is not None


async def test_a_refused_fetch_is_a_connect_error_that_names_cors(browser: FakeBrowser) -> None:
    browser.fail = True
    async with client() as http:
        with pytest.raises(httpx.ConnectError, match="CORS"):
            await http.post("/v1/chat/completions", json=CHAT)


async def test_a_silent_server_times_out(browser: FakeBrowser) -> None:
    browser.delay = 1.0
    timeout = httpx.Timeout(10, connect=0.2)
    async with client(timeout) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.post("/v1/chat/completions", json=CHAT)
    assert FakeAbortController.instances[-1].aborted
    browser.delay = 0.0
    timeout = httpx.Timeout(10, read=0.2)
    async with client(timeout) as http:
        with pytest.raises(httpx.ReadTimeout):
            path = "/with/stall_after=3,stall=5/v1/chat/completions"
            async with http.stream("POST", path, json=CHAT) as r:
                async for _ in r.aiter_bytes():
                    pass


async def test_an_answer_goes_through_fetch_only_in_pyodide(
    browser: FakeBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ServerThread() as server:  # elsewhere, over a socket
        assert (await ipyllm.achat("hi", base_url=f"{server.url}/v1")).status == "done"
    assert browser.sent == []
    monkeypatch.setattr(sys, "platform", "emscripten")
    assert (await ipyllm.achat("hi", base_url="http://127.0.0.1:8765/v1")).status == "done"
    assert len(browser.sent) == 1
