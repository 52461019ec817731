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
    """SSE events or NDJSON lines, incrementally, whatever the split of the bytes.

    With ``error_field``, an SSE line ``error: ...`` (llama.cpp's mid-stream errors
    before its 2025 error-event change; the SSE rules ignore unknown fields) becomes an
    event named ``error`` carrying that value, so the dialect sees the failure.
    """

    def __init__(self, framing: Literal["sse", "ndjson"], *, error_field: bool = False) -> None:
        self._sse = SSEDecoder() if framing == "sse" else None
        self._error_lines = _ErrorFieldLines() if error_field and self._sse is not None else None
        self._lines = LineDecoder()
        self.ended_mid_event = False
        """Set by :meth:`close`: the stream stopped inside an event or line."""

    def feed(self, data: bytes) -> Sequence[WireEvent]:
        if self._sse is not None:
            lines = self._error_lines
            if lines is not None:  # inlined for the usual read: whole events, no "error:"
                if lines.held or data.find(_FIELD) >= 0 or data[-1:] != b"\n":
                    data = lines.rewrite(data)
                else:
                    lines.at_line_start = True
            return self._sse.feed(data)
        return [JSONLine(line) for line in self._lines.feed(data)]

    def close(self) -> Sequence[WireEvent]:
        if self._sse is not None:
            if self._error_lines is not None and self._error_lines.held:
                self._sse.feed(self._error_lines.held)  # the start of a line, cut short
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


_FIELD = b"error:"
_AS_EVENT = b"event: error\ndata:"


class _ErrorFieldLines:
    """Rewrites lines that start with ``error:`` as ``event: error`` + ``data:``, on bytes.

    A line can start in one read and go on in the next: letters at the end of a read
    that may begin such a line wait for the next read (never a line end, so no event
    is held back). A newline inside JSON is escaped, so only real lines are rewritten.
    """

    def __init__(self) -> None:
        self.held = b""
        self.at_line_start = True

    def rewrite(self, data: bytes) -> bytes:
        if self.held:
            data, self.held = self.held + data, b""
        if not data:
            return data
        if _FIELD in data:
            if self.at_line_start and data.startswith(_FIELD):
                data = _AS_EVENT + data[len(_FIELD) :]
            data = data.replace(b"\n" + _FIELD, b"\n" + _AS_EVENT)
            data = data.replace(b"\r" + _FIELD, b"\r" + _AS_EVENT)
        if data[-1] in b"\r\n":  # the usual read: whole events
            self.at_line_start = True
            return data
        start = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        tail = data[start:]
        if (start or self.at_line_start) and len(tail) < len(_FIELD) and _FIELD.startswith(tail):
            self.held = tail
            self.at_line_start = True
            return data[:start]
        self.at_line_start = False
        return data
