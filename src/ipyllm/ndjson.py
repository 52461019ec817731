"""An incremental decoder for newline-delimited JSON streams (Ollama's native API).

Lines end at LF only (a CR before it is dropped), and are split on bytes before
UTF-8 decoding, so a multi-byte character split across reads is safe and
U+2028, U+2029 or U+0085 inside a JSON string never end a line. Blank lines are
skipped. The result is the same for every split of the same bytes::

    decoder = NDJSONDecoder()
    for piece in pieces:
        for obj in decoder.feed(piece):
            ...
    decoder.close()   # a last line without a newline is still a line
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ._json import loads
from ._text import snippet
from .errors import ProtocolError

__all__ = ["LineDecoder", "NDJSONDecoder"]


class LineDecoder:
    """Splits a byte stream into text lines at LF; the line ends are not kept."""

    def __init__(self) -> None:
        self._partial = b""

    @property
    def has_pending(self) -> bool:
        """True when bytes of an unfinished line are buffered."""
        return bool(self._partial.strip(b" \t\r"))

    def feed(self, data: bytes) -> list[str]:
        if self._partial:
            data = self._partial + data
        complete, newline, self._partial = data.rpartition(b"\n")
        if not newline:
            return []
        return _decode_lines(complete)

    def close(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return _decode_lines(rest)


def _decode_lines(data: bytes) -> list[str]:
    """The non-blank lines, without a CR before the LF (JSON whitespace only counts as blank)."""
    lines = data.decode("utf-8", "replace").split("\n")
    return [line.rstrip("\r") for line in lines if line.strip(" \t\r")]


class NDJSONDecoder:
    """Turns a byte stream of JSON lines into parsed objects, incrementally.

    A line that is not JSON raises :class:`ipyllm.ProtocolError`, after the
    objects before it have been returned; the lines after it stay queued and come
    out of the next call to :meth:`feed` or :meth:`close`, so nothing else is lost.
    """

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._queue: deque[str] = deque()

    @property
    def has_pending(self) -> bool:
        return bool(self._queue) or self._lines.has_pending

    def feed(self, data: bytes) -> list[Any]:
        self._queue.extend(self._lines.feed(data))
        return self._drain()

    def close(self) -> list[Any]:
        self._queue.extend(self._lines.close())
        return self._drain()

    def _drain(self) -> list[Any]:
        objects: list[Any] = []
        while self._queue:
            line = self._queue[0]
            try:
                obj = loads(line)
            except ValueError as exc:
                if objects:
                    return objects  # hand back the good ones first; the bad line raises next
                self._queue.popleft()
                raise ProtocolError(f"a line of the stream is not JSON: {snippet(line)}") from exc
            self._queue.popleft()
            objects.append(obj)
        return objects
