"""An httpx transport that answers from a :class:`TeachingApp` in-process, without a socket.

The client still reads raw bytes through its usual decoders, so the offline demo
exercises exactly the code paths a real provider would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from ipyllm.server._app import TeachingApp
from ipyllm.server._responses import DropConnection, ResponseBody


class DemoTransport(httpx.AsyncBaseTransport):
    """Routes requests to ``app`` (or to a new ``TeachingApp(**app_kwargs)``)."""

    def __init__(self, app: TeachingApp | None = None, **app_kwargs: Any) -> None:
        self.app = app if app is not None else TeachingApp(**app_kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {name.lower(): value for name, value in request.headers.items()}
        response = await self.app.handle(
            request.method, request.url.raw_path.decode("ascii"), headers, body, peer="in-process"
        )
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_AppStream(response.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()},
        )


class _AppStream(httpx.AsyncByteStream):
    """Hands each piece on as the app yields it; closing it stops the app's body."""

    def __init__(self, body: ResponseBody) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._body:
                yield piece
        except DropConnection:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ) from None

    async def aclose(self) -> None:
        await self._body.aclose()
