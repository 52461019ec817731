"""Framing: the bytes of a response cut into the wire events a dialect reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .._json import loads
from ..dialects import WireEvent
from ..ndjson import LineDecoder
from ..sse import SSEDecoder


@dataclass(slots=True)
class JSONLine:
    """One line of an NDJSON stream, as a wire event."""

    data: str
    event: str = "message"


class FramingDecoder:
    """SSE events or NDJSON lines, incrementally, whatever the split of the bytes."""

    def __init__(self, framing: Literal["sse", "ndjson"]) -> None:
        self._sse = SSEDecoder() if framing == "sse" else None
        self._lines = LineDecoder()
        self.ended_mid_event = False
        """Set by :meth:`close`: the stream stopped inside an event or line."""

    def feed(self, data: bytes) -> Sequence[WireEvent]:
        if self._sse is not None:
            return self._sse.feed(data)
        return [JSONLine(line) for line in self._lines.feed(data)]

    def close(self) -> Sequence[WireEvent]:
        if self._sse is not None:
            self.ended_mid_event = self._sse.has_pending
            return self._sse.close()
        # NDJSON: a last line without its newline is whole if it parses, else cut short.
        lines = self._lines.close()
        complete = [line for line in lines if _is_json(line)]
        self.ended_mid_event = len(complete) != len(lines)
        return [JSONLine(line) for line in complete]


def _is_json(text: str) -> bool:
    try:
        loads(text)
    except ValueError:
        return False
    return True
