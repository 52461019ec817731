"""Turning what other libraries stream into ipyllm's normalized events.

A view can show any async iterable: ipyllm's own events, plain strings, OpenAI
or Anthropic SDK objects, LangChain message chunks, or dicts in OpenAI's chunk
shape. Objects are read by duck typing, so none of those libraries is imported.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from ._dialects.openai import OpenAIChatParser
from ._errors import ProtocolError
from .events import (
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
from .sse import ServerSentEvent

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


async def normalized(source: AsyncIterable[Any]) -> AsyncIterator[Event | RawEvent]:
    """Yield normalized events for every item of ``source``."""
    openai_chunks = OpenAIChatParser()
    async for item in source:
        for event in to_events(item, openai_chunks):
            yield event


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
