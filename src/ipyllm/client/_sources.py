"""Any async stream as a source of normalized events, read into a transcript.

A view can show any async iterable: ipyllm's own events, plain strings, OpenAI
or Anthropic SDK objects, LangChain message chunks, or dicts in OpenAI's chunk
shape. Objects are read by duck typing, so none of those libraries is imported.
:class:`SourceStream` is, like :class:`Stream`, the only writer of its transcript.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, Protocol

from ..dialects.openai import OpenAIChatParser
from ..errors import IpyllmError, ProtocolError, ProviderError, StreamError
from ..events import (
    ErrorEvent,
    Event,
    Finish,
    RawEvent,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageUpdate,
)
from ..sse import ServerSentEvent
from ..transcript import Transcript
from ._stream import Stream


class Source(Protocol):
    """What a runner drives: events to iterate, the transcript they build, a way to stop."""

    transcript: Transcript

    def __aiter__(self) -> AsyncIterator[Event | RawEvent]: ...

    async def aclose(self) -> None: ...


class SourceStream:
    """A foreign async iterable read as normalized events into a transcript of its own."""

    def __init__(self, source: AsyncIterable[Any], *, provider: str = "stream", model: str = ""):
        self.transcript = Transcript(provider=provider, model=model)
        self._source = source
        self._events: AsyncGenerator[Event | RawEvent, None] | None = None

    def __aiter__(self) -> AsyncIterator[Event | RawEvent]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def aclose(self) -> None:
        if self._events is not None:
            await self._events.aclose()
        self.transcript.end("stopped")

    async def _run(self) -> AsyncGenerator[Event | RawEvent, None]:
        transcript = self.transcript
        transcript.start()
        openai_chunks = OpenAIChatParser()
        server_error: ErrorEvent | None = None
        try:
            async for item in self._source:
                for event in to_events(item, openai_chunks):
                    if type(event) is ErrorEvent and server_error is None:
                        server_error = event
                    if not isinstance(event, RawEvent):
                        transcript.apply(event)
                    yield event
            if server_error is not None:
                raise ProviderError(
                    f"the stream reported an error: {server_error.message}",
                    error_type=server_error.type,
                    error_code=server_error.code,
                    provider=transcript.provider,
                    transcript=transcript,
                )
        except StreamError as error:
            transcript.end("error", error)
            raise
        except Exception as exc:  # a foreign source failed: keep the text, say what happened
            failure = StreamError(
                f"the stream failed: {type(exc).__name__}: {exc}",
                provider=transcript.provider,
                transcript=transcript,
            )
            transcript.end("error", failure)
            raise failure from exc
        except BaseException:  # cancelled (Stop), closed early, or interrupted
            transcript.end("stopped")
            raise
        else:
            transcript.end("done")


class _Failed:
    """Nothing to send: the request could not even be made (a bad row, a missing key)."""

    def __init__(self, error: IpyllmError, provider: str, model: str) -> None:
        self.transcript = Transcript(provider=provider, model=model)
        self._error = error

    def __aiter__(self) -> AsyncIterator[Event | RawEvent]:
        return self._run()

    async def _run(self) -> AsyncGenerator[Event | RawEvent, None]:
        self.transcript.start()
        failure = StreamError(
            str(self._error), provider=self.transcript.provider, transcript=self.transcript
        )
        self.transcript.end("error", failure)
        raise failure
        yield  # an async generator that raises at once

    async def aclose(self) -> None:
        self.transcript.end("stopped")


def failed_source(error: IpyllmError, *, provider: str = "", model: str = "") -> Source:
    """A source whose answer fails at once with ``error`` (its transcript says so)."""
    return _Failed(error, provider, model)


def as_source(source: AsyncIterable[Any], *, title: str | None = None) -> Stream | SourceStream:
    """``source`` itself if it is an ipyllm stream, else read through a :class:`SourceStream`."""
    if isinstance(source, Stream | SourceStream):
        return source
    return SourceStream(source, provider=title or "stream")


_OWN_EVENTS = (
    TextDelta,
    ReasoningDelta,
    RefusalDelta,
    ToolCallDelta,
    Finish,
    UsageUpdate,
    ErrorEvent,
    RawEvent,
)


def to_events(item: Any, openai_chunks: OpenAIChatParser) -> list[Event | RawEvent]:
    if isinstance(item, _OWN_EVENTS):
        return [item]
    if isinstance(item, str):
        return [TextDelta(item)] if item else []
    if isinstance(item, dict):
        return list(openai_chunks.parse(ServerSentEvent(json.dumps(item))))
    if hasattr(item, "model_dump") and hasattr(item, "choices"):
        # An OpenAI SDK chunk (pydantic): read it exactly as its wire form.
        return to_events(item.model_dump(exclude_none=True), openai_chunks)
    content = getattr(item, "content", None)
    if content is not None:  # LangChain's AIMessageChunk and similar
        return _content_events(content)
    kind = getattr(item, "type", None)
    if isinstance(kind, str):
        return _typed_event(item, kind)
    text = getattr(item, "text", None)
    if isinstance(text, str):
        return [TextDelta(text)] if text else []
    raise ProtocolError(
        f"cannot show a {type(item).__name__} item: it carries no text ipyllm knows"
    )


def _typed_event(item: Any, kind: str) -> list[Event | RawEvent]:
    """SDK events with a ``type``: OpenAI Responses and Anthropic Messages."""
    if kind == "response.output_text.delta":
        return [TextDelta(str(getattr(item, "delta", "")))]
    if kind == "content_block_delta":
        delta = getattr(item, "delta", None)
        text = getattr(delta, "text", None)
        if isinstance(text, str):
            return [TextDelta(text)]
        thinking = getattr(delta, "thinking", None)
        if isinstance(thinking, str):
            return [ReasoningDelta(thinking)]
        return []
    if kind == "message_delta":
        stop = getattr(getattr(item, "delta", None), "stop_reason", None)
        return [Finish(stop)] if isinstance(stop, str) else []
    return []


def _content_events(content: Any) -> list[Event | RawEvent]:
    if isinstance(content, str):
        return [TextDelta(content)] if content else []
    events: list[Event | RawEvent] = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, str):
            events.append(TextDelta(part))
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            kind = part.get("type")
            delta = ReasoningDelta if kind in ("thinking", "reasoning") else TextDelta
            events.append(delta(part["text"]))
    return events
