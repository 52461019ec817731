"""An incremental Server-Sent Events decoder, exact to the WHATWG rules.

Feed it bytes exactly as they come off the network, in pieces of any size::

    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            print(event.event, event.data)
    decoder.close()

The result is the same for every split of the same bytes. Lines are split on
bytes (CR, LF or CRLF) before UTF-8 decoding, so a multi-byte character split
across reads is safe, and U+2028, U+2029 or U+0085 inside JSON are never taken
for line breaks. See https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._json import loads
from ._text import snippet
from .errors import ProtocolError

_BOM = b"\xef\xbb\xbf"

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the event type (``"message"`` unless the server named it),
    ``data`` the data lines joined with ``\\n``, ``id`` the last event id seen so
    far in the stream, and ``retry`` the reconnection time in milliseconds last
    set by the server (``None`` if never set).
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON; a :class:`ipyllm.ProtocolError` if it is not JSON."""
        try:
            return loads(self.data)
        except ValueError as exc:
            raise ProtocolError(
                f"event {self.event!r} does not carry JSON: {snippet(self.data)}"
            ) from exc


class SSEDecoder:
    """Turns a byte stream into :class:`ServerSentEvent` objects, incrementally."""

    def __init__(self) -> None:
        self._head: bytes | None = b""  # bytes kept until the optional BOM is decided
        self._partial = b""  # an unfinished line
        self._skip_lf = False  # the last piece ended in CR: a following LF is part of CRLF
        self._data: list[str] = []
        self._event_type = ""
        self._id_buffer = ""
        self.last_event_id = ""
        """The last event id of the stream, as a reconnecting client would send it."""
        self.retry: int | None = None
        """The reconnection time in milliseconds the server last asked for."""

    @property
    def has_pending(self) -> bool:
        """True while an event has begun but not yet been dispatched (or discarded)."""
        return bool(self._partial or self._data or self._event_type or self._head)

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode one more piece of the stream; returns the events it completes."""
        if self._head is not None:
            data = self._strip_bom(self._head, data)
            if not data:
                return []
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if self._partial:
            data = self._partial + data
        if b"\r" in data:
            # CR and CRLF end lines too. A CR at the very end may be the first half
            # of a CRLF split across reads: end the line now, drop a leading LF next.
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        complete, newline, self._partial = data.rpartition(b"\n")
        if not newline:
            return []
        return self._process(complete.decode("utf-8", "replace").split("\n"))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an event not terminated by a blank line is discarded (per spec).

        Always returns an empty list; check :attr:`has_pending` first to learn
        whether the stream ended in the middle of an event.
        """
        self._partial = b""
        self._data = []
        self._event_type = ""
        self._head = None
        return []

    def _strip_bom(self, head: bytes, data: bytes) -> bytes:
        head += data
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head  # still undecided
            return b""
        self._head = None
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _process(self, lines: list[str]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                continue
            if line.startswith("data: "):  # the common case, decided without splitting
                self._data.append(line[6:])
                continue
            if line[0] == ":":
                continue  # a comment (keep-alives)
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event_type = value
            elif name == "id":
                if "\0" not in value:
                    self._id_buffer = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self.retry = int(value)
            # any other field is ignored
        return events

    def _dispatch(self) -> ServerSentEvent | None:
        self.last_event_id = self._id_buffer
        data, event_type = self._data, self._event_type
        self._data, self._event_type = [], ""
        if not data:
            return None  # blocks with only id/retry/event/comments dispatch nothing
        return ServerSentEvent(
            data=data[0] if len(data) == 1 else "\n".join(data),
            event=event_type or "message",
            id=self.last_event_id,
            retry=self.retry,
        )
