"""A sink for terminals: the answer printed as it arrives, with a note if it did not end well."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from ..events import Event, RawEvent, ReasoningDelta, TextDelta
from ..render import status_line
from ..transcript import Transcript


class TerminalSink:
    """Prints text deltas (reasoning marked as such) to ``out``, then a closing note."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._in_reasoning = False

    @property
    def out(self) -> TextIO:
        return self._out if self._out is not None else sys.stdout

    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None:
        pass

    def feed(self, event: Event | RawEvent) -> None:
        out = self.out
        if isinstance(event, ReasoningDelta):
            if not self._in_reasoning:
                out.write("[reasoning] ")
                self._in_reasoning = True
            out.write(event.text)
        elif isinstance(event, TextDelta):
            if self._in_reasoning:
                out.write("\n\n")
                self._in_reasoning = False
            out.write(event.text)
        else:
            return
        out.flush()

    def end(self, transcript: Transcript) -> None:
        out = self.out
        if transcript.status in ("stopped", "error") or transcript.finish_reason in (
            "length",
            "max_tokens",
        ):
            note = f"\n[{status_line(transcript)}]"
            if transcript.error is not None:
                note += f"\n[error: {transcript.error}]"
            out.write(note)
        out.write("\n")
        out.flush()


class TerminalBatch:
    """Many answers in a terminal: each printed whole, under its title, as it ends."""

    def __init__(self, titles: list[str], out: TextIO | None = None) -> None:
        self.titles = titles
        self._out = out

    def begin(self, count: int, stop_all: Callable[[], None]) -> None:
        pass

    def row(self, index: int) -> _TerminalRow:
        return _TerminalRow(self, index)

    def end(self, transcripts: list[Transcript]) -> None:
        pass

    def _print(self, index: int, transcript: Transcript) -> None:
        out = self._out if self._out is not None else sys.stdout
        title = self.titles[index] if index < len(self.titles) else self.titles[0]
        out.write(f"\n[{index}] {title} · {status_line(transcript)}\n{transcript.text}\n")
        if transcript.error is not None:
            out.write(f"[error: {transcript.error}]\n")
        out.flush()


class _TerminalRow:
    def __init__(self, batch: TerminalBatch, index: int) -> None:
        self._batch, self._index = batch, index

    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None:
        pass

    def feed(self, event: Event | RawEvent) -> None:
        pass

    def end(self, transcript: Transcript) -> None:
        self._batch._print(self._index, transcript)
