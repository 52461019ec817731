"""The accumulator: one Transcript per answer, built from normalized events."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .events import (
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageUpdate,
)

if TYPE_CHECKING:
    from .errors import StreamError

Status = Literal["pending", "streaming", "done", "stopped", "error"]
CutOff = Literal["max_tokens", "content_filter"]

# Finish values, in each provider's own words, that say why an answer was cut short.
_LIMITS = ("length", "max_tokens", "MAX_TOKENS", "max_output_tokens", "incomplete")
_FILTERS = ("content_filter", "refusal", "SAFETY", "RECITATION", "BLOCKLIST",
            "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")  # fmt: skip
_CUT_OFF: dict[str, CutOff] = {
    **dict.fromkeys(_LIMITS, "max_tokens"),
    **dict.fromkeys(_FILTERS, "content_filter"),
}


@dataclass(slots=True)
class Usage:
    """Token counts, normalized, with the provider's own dict in ``raw``."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCall:
    """A tool call the model asked for; ``arguments`` is the JSON text as streamed."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        """The arguments as Python objects (``None`` while they are not valid JSON yet)."""
        try:
            return json.loads(self.arguments) if self.arguments else {}
        except (ValueError, RecursionError):  # a model can nest deeper than json recurses
            return None


class Transcript:
    """Everything one answer has produced so far; updated as events arrive.

    It stays readable after a stop or an error: ``status`` says which, and
    ``text`` holds exactly the text received (and shown) until then.
    """

    def __init__(
        self,
        *,
        provider: str = "",
        model: str = "",
        messages: list[dict[str, Any]] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.served_model: str | None = None
        """The model the server says answered, when it says (it can differ from ``model``)."""
        self.model_named = True
        """Whether somebody chose ``model`` (False: a provider's default, never asked for)."""
        self.endpoint: str | None = None
        """Where the request went when not the provider's own service (``host:port``)."""
        self.cost: float | None = None
        """The answer's price in US dollars once it ended: 0 when free, None when unknown."""
        self.messages: list[dict[str, Any]] = list(messages or [])
        self.params: dict[str, Any] = dict(params or {})
        self.schema: dict[str, Any] | None = None
        """The JSON Schema the answer was asked to fit, for a structured answer."""
        self.parsed: Any = None
        """A structured answer's value once it ended well: the JSON as Python objects, or
        the pydantic model's instance when the schema was a model class."""
        self.status: Status = "pending"
        self.error: StreamError | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tool_calls: list[ToolCall] = []
        self.notes: list[str] = []
        """Things worth saying about the answer that are not errors (not recorded, trimmed...)."""
        self.retries = 0
        """How many times the request was sent again before the stream started."""
        self.delta_count = 0
        """How many text and reasoning deltas arrived (a token count when usage is absent)."""
        self.started_at: float | None = None
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._server_error: ErrorEvent | None = None

    # -- reading -----------------------------------------------------------
    @property
    def text(self) -> str:
        return _joined(self._text)

    @property
    def reasoning(self) -> str:
        return _joined(self._reasoning)

    @property
    def refusal(self) -> str:
        return _joined(self._refusal)

    @property
    def server_error(self) -> ErrorEvent | None:
        """The first error event the server sent inside the stream, if any."""
        return self._server_error

    @property
    def time_to_first_token(self) -> float | None:
        if self.started_at is None or self.first_token_at is None:
            return None
        return self.first_token_at - self.started_at

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def output_tokens(self) -> int:
        """Output tokens as reported by the provider, else the number of deltas."""
        if self.usage is not None and self.usage.output_tokens is not None:
            return self.usage.output_tokens
        return self.delta_count

    @property
    def tokens_per_second(self) -> float | None:
        """Output rate from the first token on (``None`` until two points in time exist)."""
        if self.first_token_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        span = end - self.first_token_at
        return self.output_tokens / span if span > 0 else None

    @property
    def cut_off(self) -> CutOff | None:
        """Why the answer was cut short, whatever the provider's word for it, else None.

        "max_tokens": the token limit (``length``, ``max_tokens``, ``MAX_TOKENS``,
        ``max_output_tokens``); "content_filter": a content filter (``content_filter``,
        Anthropic's ``refusal``, Gemini's ``SAFETY``...). ``finish_reason`` keeps the word.
        """
        return _CUT_OFF.get(self.finish_reason) if self.finish_reason else None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")

    # -- building ----------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold one normalized event into the transcript."""
        # ``type(event) is X``, not isinstance() or ``match``: the exact-type test is the
        # fastest dispatch on this per-token path, and mypy narrows ``event`` by it.
        if type(event) is TextDelta:
            self._first_token()
            self._text.append(event.text)
            self.delta_count += 1
        elif type(event) is ReasoningDelta:
            self._first_token()
            self._reasoning.append(event.text)
            self.delta_count += 1
        elif type(event) is RefusalDelta:
            self._first_token()
            self._refusal.append(event.text)
        elif type(event) is ToolCallDelta:
            self._first_token()
            self._merge_tool_call(event)
        elif type(event) is Finish:
            self.finish_reason = event.reason
        elif type(event) is UsageUpdate:
            self.usage = Usage(
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
                total_tokens=event.total_tokens,
                raw=dict(event.raw),
            )
        elif type(event) is ErrorEvent and self._server_error is None:
            self._server_error = event

    def start(self) -> None:
        self.status = "streaming"
        self.started_at = time.monotonic()

    def end(self, status: Status, error: StreamError | None = None) -> None:
        """Mark the answer finished; the first call wins (a stop after an error stays an error)."""
        if self.finished:
            return
        self.status = status
        self.error = error
        self.ended_at = time.monotonic()

    def _first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def _merge_tool_call(self, delta: ToolCallDelta) -> None:
        for call in self.tool_calls:
            if call.index == delta.index:
                break
        else:
            call = ToolCall(index=delta.index)
            self.tool_calls.append(call)
        if delta.id:
            call.id = delta.id
        if delta.name and not call.name:
            call.name = delta.name
        call.arguments += delta.arguments

    # -- exporting ---------------------------------------------------------
    def as_message(self) -> dict[str, Any]:
        """The answer as a chat message, for the next turn of a conversation."""
        return {"role": "assistant", "content": self.text}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the answer and how it ended (never any API key)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "served_model": self.served_model,
            "messages": self.messages,
            "params": self.params,
            "status": self.status,
            "text": self.text,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [
                {"index": c.index, "id": c.id, "name": c.name, "arguments": c.arguments}
                for c in self.tool_calls
            ],
            "finish_reason": self.finish_reason,
            "usage": None
            if self.usage is None
            else {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "total_tokens": self.usage.total_tokens,
                "raw": self.usage.raw,
            },
            "error": None if self.error is None else str(self.error),
            "schema": self.schema,
            "parsed": _json_ready(self.parsed),
            "cost": self.cost,
            "time_to_first_token": self.time_to_first_token,
            "elapsed": self.elapsed,
            "tokens_per_second": self.tokens_per_second,
        }

    def __repr__(self) -> str:
        text = self.text
        shown = text if len(text) <= 60 else text[:57] + "..."
        return (
            f"<Transcript {self.provider}/{self.model} {self.status}"
            f" finish={self.finish_reason!r} text={shown!r}>"
        )


def _joined(parts: list[str]) -> str:
    # Keep one joined string so reading .text per frame stays O(1) amortized.
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


def _json_ready(value: Any) -> Any:
    """A parsed value as JSON data (a pydantic instance as its ``model_dump``)."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) and not isinstance(value, type) else value
