"""Recording a response as it comes off the wire, and serving it again later.

Both are httpx transports, so a replayed answer goes through exactly the same
decoding path as a live one: the same bytes, in the same pieces, at the recorded
pace, ten times faster, or at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from ..errors import StoreError
from ..transcript import Transcript
from .store import Recording, Store

# Framing headers describe the original connection, not the bytes we serve again.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Recorder:
    """Captures the last response of one stream (after any retries) for the store."""

    store: Store
    key: str
    request: dict[str, Any]
    http_status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return _RecordingTransport(inner, self)

    def save(self, transcript: Transcript) -> None:
        """Store the exchange; a store problem becomes a note on the answer, never a failure."""
        if not self.http_status:
            return  # nothing was received: nothing to replay
        try:
            self.store.save_exchange(
                key=self.key,
                transcript=transcript,
                request=self.request,
                http_status=self.http_status,
                headers=self.headers,
                chunks=self.chunks,
            )
        except StoreError as error:
            transcript.notes.append(f"Not recorded: {error}")


class _RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = await self._inner.handle_async_request(request)
        recorder = self._recorder
        recorder.http_status = response.status_code
        recorder.headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in _HOP_BY_HOP
        ]
        recorder.chunks = []  # a retried request replaces what the failed one recorded
        # httpx types Response.stream as sync-or-async; an async transport's is async.
        inner = cast(httpx.AsyncByteStream, response.stream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TeeStream(inner, recorder.chunks, started),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TeeStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, sink: list[tuple[float, bytes]], t0: float):
        self._inner, self._sink, self._t0 = inner, sink, t0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            self._sink.append((time.monotonic() - self._t0, piece))
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


class ReplayTransport(httpx.AsyncBaseTransport):
    """Serves one recording to any request; ``speed`` 0 means at once, 1 the recorded pace."""

    def __init__(self, recording: Recording, speed: float = 0.0) -> None:
        self.recording = recording
        self.speed = speed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(
            self.recording.http_status,
            headers=self.recording.headers,
            stream=_ReplayStream(self.recording.chunks, self.speed),
            extensions={"http_version": b"HTTP/1.1"},
        )


class _ReplayStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[tuple[float, bytes]], speed: float) -> None:
        self._chunks, self._speed = chunks, speed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        started = time.monotonic()
        for at, piece in self._chunks:
            if self._speed > 0:
                delay = started + at / self._speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # still a stream: let the loop breathe between pieces
            yield piece
