"""What a view is to the runner: a sink for one answer's events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..events import Event, RawEvent
from ..transcript import Transcript


class Sink(Protocol):
    """Receives one answer: ``begin``, then every event in order, then ``end`` exactly once.

    A sink only reads the transcript (the client writes it) and never starts,
    awaits or cancels anything: ``stop`` is the runner's, to be called from a
    button or any thread. All calls come from the thread running the answer's loop.
    """

    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None: ...

    def feed(self, event: Event | RawEvent) -> None: ...

    def end(self, transcript: Transcript) -> None: ...


class BatchSink(Protocol):
    """Receives many answers: ``begin`` once, a :class:`Sink` per row, ``end`` once all ended.

    ``stop_all`` is the runner's; each row's own sink gets its row's stop as usual.
    """

    def begin(self, count: int, stop_all: Callable[[], None]) -> None: ...

    def row(self, index: int) -> Sink: ...

    def end(self, transcripts: list[Transcript]) -> None: ...
