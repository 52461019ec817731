"""The browser's ``fetch`` as an httpx transport, for Pyodide (JupyterLite), where no socket exists.

The response body is read as it streams, through a ``ReadableStream`` reader, so the bytes reach
the same decoders and dialects at the pace they arrive. Closing the response (a Stop, a stream
closed early) aborts the fetch through its ``AbortController``: the browser closes the
connection and the server sees the client leave, as with a socket. Timeouts are httpx's: the
connect timeout bounds the wait for the response headers, the read timeout each wait for a
piece of the body (a stall), and they raise httpx's own timeout errors, so retries and error
messages work as everywhere else.

Browsers refuse cross-origin calls the server does not allow (CORS) with the same error as an
unreachable host: the message says both. Headers a page may not set (``Host``,
``Content-Length``, ``Connection``, ``Accept-Encoding``, ``User-Agent``) are left to the
browser, and since the browser decompresses the body itself, ``Content-Encoding`` is removed
from the response so httpx does not decode it twice. A request in Anthropic's format (it has
an ``anthropic-version`` header) gets ``anthropic-dangerous-direct-browser-access: true``,
without which Anthropic's API refuses calls from a page; the key is in the page either way.

It sends only where ``js`` and ``pyodide`` exist (imported as it sends); a stream given no
transport uses it on ``sys.platform == "emscripten"``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

# Set by the browser itself, or forbidden to pages (the Fetch standard's list, and more).
_LEFT_TO_BROWSER = frozenset(
    {"host", "content-length", "connection", "accept-encoding", "user-agent", "keep-alive",
     "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)  # fmt: skip
_ANTHROPIC_BROWSER = "anthropic-dangerous-direct-browser-access"
# Describe the body as the browser received it, not as it is handed on (already decoded).
_DROPPED_RESPONSE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _js() -> tuple[Any, Any, type[BaseException]]:
    """The ``js`` module, ``pyodide.ffi.to_js`` and ``JsException`` (only in Pyodide)."""
    import js  # type: ignore[import-not-found]
    from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

    return js, to_js, JsException


def _timeout(request: httpx.Request, kind: str) -> float | None:
    timeouts = request.extensions.get("timeout") or {}
    value = timeouts.get(kind)
    return None if value is None else float(value)


class FetchTransport(httpx.AsyncBaseTransport):
    """Sends each request with the browser's ``fetch`` and streams the body back."""

    def __init__(self, *, credentials: str = "omit") -> None:
        # No cookies or HTTP auth of the page's origin go with a call to a model's API.
        self.credentials = credentials

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        js, to_js, js_exception = _js()
        body = await request.aread()
        controller = js.AbortController.new()
        headers = [
            [name, value]
            for name, value in request.headers.multi_items()
            if name.lower() not in _LEFT_TO_BROWSER
        ]
        if "anthropic-version" in request.headers and _ANTHROPIC_BROWSER not in request.headers:
            # Anthropic's API answers a page only when asked this way (its CORS rule).
            headers.append([_ANTHROPIC_BROWSER, "true"])
        init: dict[str, Any] = {
            "method": request.method,
            "headers": headers,
            "signal": controller.signal,
            "credentials": self.credentials,
            "cache": "no-store",
            "redirect": "follow",
        }
        if body:
            init["body"] = to_js(body)
        options = to_js(init, dict_converter=js.Object.fromEntries)
        url = str(request.url)
        try:
            response = await asyncio.wait_for(
                _awaitable(js.fetch(url, options)), _timeout(request, "connect")
            )
        except asyncio.TimeoutError:
            controller.abort()
            raise httpx.ConnectTimeout(f"no response from {url}", request=request) from None
        except asyncio.CancelledError:
            controller.abort()
            raise
        except js_exception as exc:
            controller.abort()
            raise httpx.ConnectError(
                f"the browser could not fetch {url} ({exc}); a server that does not allow "
                "calls from this page's origin (CORS) fails the same way",
                request=request,
            ) from None
        response_headers = [
            (str(pair[0]), str(pair[1]))
            for pair in response.headers.entries()
            if str(pair[0]).lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        body_stream = response.body  # null (falsy) for a response without a body
        reader = body_stream.getReader() if body_stream else None
        return httpx.Response(
            int(response.status),
            headers=response_headers,
            stream=FetchStream(reader, controller, _timeout(request, "read"), request),
            request=request,
            extensions={"reason_phrase": str(response.statusText).encode("latin-1", "replace")},
        )


async def _awaitable(promise: Any) -> Any:
    return await promise


class FetchStream(httpx.AsyncByteStream):
    """A response body read from a ``ReadableStream`` reader; closing it aborts the fetch."""

    def __init__(self, reader: Any, controller: Any, read_timeout: float | None, request: Any):
        self._reader = reader
        self._controller = controller
        self._read_timeout = read_timeout
        self._request = request
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._reader is None:
            return
        _, _, js_exception = _js()
        while not self._closed:
            try:
                result = await asyncio.wait_for(_awaitable(self._reader.read()), self._read_timeout)
            except asyncio.TimeoutError:
                raise httpx.ReadTimeout(
                    f"nothing received for {self._read_timeout:g} s", request=self._request
                ) from None
            except js_exception as exc:
                if self._closed:
                    return
                raise httpx.ReadError(
                    f"the connection broke while reading ({exc})", request=self._request
                ) from None
            if result.done:
                return
            chunk = result.value.to_bytes()
            if chunk:
                yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Aborting closes the connection; the reader's pending read then rejects, ignored.
        self._controller.abort()
        if self._reader is not None:
            # A reader with a read pending may refuse; the fetch is aborted anyway.
            with contextlib.suppress(Exception):
                self._reader.releaseLock()
