"""The normalized events every provider dialect produces.

Whatever the wire format (OpenAI chunks, Anthropic named events, Ollama NDJSON,
Gemini objects), a stream becomes a sequence of these small records. Treat them as
read-only; they are not frozen only because frozen dataclasses cost twice as much
to create, and one is created for every token.
The accumulator (:class:`ipyllm.Transcript`) and the views consume only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TextDelta:
    """A piece of the visible answer."""

    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking"), shown apart from the answer."""

    text: str


@dataclass(slots=True)
class RefusalDelta:
    """A piece of a refusal (OpenAI structured outputs stream these apart from content)."""

    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of a tool call; fragments with the same ``index`` belong together.

    ``id`` and ``name`` usually come only on the first fragment; ``arguments`` is a
    piece of the JSON text of the arguments, to be concatenated.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class Finish:
    """The provider's own finish value, verbatim (``stop``, ``length``, ``end_turn``...)."""

    reason: str


@dataclass(slots=True)
class UsageUpdate:
    """Token counts as the provider reports them; the last one seen wins.

    ``raw`` is the provider's dict merged over earlier reports (Anthropic sends input
    tokens at the start and cumulative output tokens at the end).
    """

    raw: dict[str, Any]
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(slots=True)
class ErrorEvent:
    """An error the server reported inside a stream that had already started."""

    message: str
    type: str | None = None
    code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RawEvent:
    """One wire event as received (an SSE event or an NDJSON line), for teaching views.

    ``time`` is seconds since the request was sent. Only yielded by
    ``ipyllm.stream(..., raw=True)``.
    """

    data: str
    event: str | None
    time: float


Event = (
    TextDelta | ReasoningDelta | RefusalDelta | ToolCallDelta | Finish | UsageUpdate | ErrorEvent
)

__all__ = [
    "ErrorEvent",
    "Event",
    "Finish",
    "RawEvent",
    "ReasoningDelta",
    "RefusalDelta",
    "TextDelta",
    "ToolCallDelta",
    "UsageUpdate",
]
