"""What every wire format shares: the request, the generation, events and the Dialect API.

Each dialect (``_openai``, ``_anthropic``, ``_ollama``, ``_gemini``) parses its own
request body into a :class:`Prompt`, then an instance frames one :class:`Generation`
as wire events (one per token, so a stream visibly grows), the provider's in-stream
error, a deliberately broken event, or the whole non-streamed JSON answer. Shapes
follow the captures in shared/fixtures.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from ipyllm.server._media import Picture


class RequestError(ValueError):
    """The request body is not what the provider accepts (answered with HTTP 400)."""


@dataclass(frozen=True)
class Prompt:
    """What a request asks for, whatever its provider's request shape."""

    messages: list[dict[str, str]]
    model: str
    stream: bool
    max_tokens: int | None = None
    include_usage: bool = False
    images: tuple[Picture, ...] = ()
    """Every image in the request (earlier turns' too), as its bytes say they are."""
    schema: dict[str, Any] | None = None
    """The JSON Schema a structured answer must fit (a JSON mode gets a small one)."""
    tool: str | None = None
    """Anthropic's forced tool: the answer is its input, streamed as tool_use."""


@dataclass(frozen=True)
class Generation:
    """The demo model's output for one request, as tokens, before any framing."""

    model: str
    number: int  # the request number, to make ids unique and stable
    prompt_tokens: int
    answer: list[str]
    reasoning: list[str] = field(default_factory=list)
    truncated: bool = False  # cut by the request's max tokens
    include_usage: bool = False
    tool: str | None = None  # Anthropic: the answer is this tool's input (JSON)

    @property
    def text(self) -> str:
        return "".join(self.answer)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def completion_tokens(self) -> int:
        return len(self.answer) + len(self.reasoning)


class Event(NamedTuple):
    data: bytes
    is_token: bool  # token events are paced and counted by the fault options


def sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {compact_json(payload)}\n\n".encode()


def compact_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def text_of(content: Any) -> str:
    """Message content as plain text: a string, or the text of a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def parse_messages(items: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
        raise RequestError(f"'{where}' must be a list of message objects")
    return [
        {"role": str(m.get("role", "user")), "content": text_of(m.get("content"))} for m in items
    ]


def sub_object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key) or {}
    if not isinstance(value, dict):
        raise RequestError(f"'{key}' must be an object")
    return value


def parse_max_tokens(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RequestError(f"'{name}' must be a whole number >= 0")
    return value


class Dialect(ABC):
    """One provider's wire format; an instance frames one generation."""

    family: ClassVar[str]  # which provider's error envelope applies
    content_type: ClassVar[str] = "text/event-stream"
    reasoning: ClassVar[bool] = True  # whether the format can carry reasoning
    # Other servers' ways of failing mid-stream in this format (error_style=...).
    error_styles: ClassVar[tuple[str, ...]] = ()

    def __init__(self, gen: Generation) -> None:
        self.gen = gen
        self.created = int(time.time())

    @staticmethod
    @abstractmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        """Read the provider's request body."""

    @abstractmethod
    def events(self) -> Iterator[Event]:
        """The whole successful stream."""

    @abstractmethod
    def error_events(self, style: str | None = None) -> list[bytes]:
        """The provider's own "the stream failed" event(s); the body ends after them.

        ``style`` names one of :attr:`error_styles`: another server's way of failing.
        """

    @abstractmethod
    def malformed_event(self) -> bytes:
        """An event whose JSON is cut short, as a buggy proxy might forward it."""

    @abstractmethod
    def whole(self) -> dict[str, Any]:
        """The non-streamed answer."""
