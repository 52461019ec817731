"""A prompt over many rows, watched live: one progress line and a table of recent and failed
rows, drawn as one widget message per frame whatever the row count."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..events import Event, RawEvent
from ..pricing import format_cost
from ..render import STYLESHEET
from ..transcript import Transcript
from ._outputs import hide_fallback_css
from ._parts import ShownWithFallback, plain_html, stop_button
from ._sink import Sink

_FRAME_INTERVAL = 0.1  # at most 10 frames (widget messages) a second for the whole map
_FALLBACK_INTERVAL = 2.0
_RECENT = 5
_FAILED_SHOWN = 20
_PREVIEW = 80

PROGRESS_CSS = """\
.ipyllm-map table { border-collapse: collapse; font-size: 0.85em; margin-top: 4px; }
.ipyllm-map td, .ipyllm-map th { padding: 1px 8px; text-align: left; vertical-align: top; }
.ipyllm-map .ipyllm-map-failed td { color: var(--jp-error-color1, #b71c1c); }
"""


class _Row:
    """The sink of one row: it only counts and remembers, the progress view draws."""

    def __init__(self, progress: ProgressView, index: int) -> None:
        self._progress = progress
        self._index = index

    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None:
        self._progress._row_started()

    def feed(self, event: Event | RawEvent) -> None:
        pass  # the transcript counts; the progress line reads it at the end of the row

    def end(self, transcript: Transcript) -> None:
        self._progress._row_ended(self._index, transcript)


class ProgressView(ShownWithFallback, widgets.VBox):
    """A batch sink for many rows: done, failed, stopped, queued, rate, ETA, tokens and cost."""

    def __init__(self, title: str) -> None:
        self.answer_id = uuid.uuid4().hex[:16]
        self.title = title
        self._count = 0
        self._started = 0
        self._ended: dict[str, int] = {"done": 0, "error": 0, "stopped": 0}
        self._tokens = [0, 0]
        self._spent: float | None = 0.0
        self._recent: deque[tuple[int, Transcript]] = deque(maxlen=_RECENT)
        self._failed: list[tuple[int, Transcript]] = []
        self._began_at: float | None = None
        self._ended_at: float | None = None
        self._stop_all: Callable[[], None] | None = None
        self._frame_timer: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._last_fallback = 0.0
        self._panel = plain_html(_dom_classes=("ipyllm-map-panel",))
        self._stop_button = stop_button(
            "Stop",
            "Stop every row still running or queued; finished rows are kept",
            "ipyllm-stop",
        )
        self._stop_button.on_click(lambda _button: self._stop_all and self._stop_all())
        style = f"<style>{STYLESHEET}{PROGRESS_CSS}{hide_fallback_css(self.answer_id)}</style>"
        super().__init__([plain_html(value=style), self._stop_button, self._panel])
        self.add_class("ipyllm")
        self.add_class("ipyllm-map")
        self._panel.value = self._html()

    # -- the batch sink ----------------------------------------------------------------
    def begin(self, count: int, stop_all: Callable[[], None]) -> None:
        self._count = count
        self._stop_all = stop_all
        self._began_at = time.monotonic()
        self._stop_button.disabled = False
        self._draw()

    def row(self, index: int) -> Sink:
        return _Row(self, index)

    def end(self, transcripts: list[Transcript]) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None
        self._ended_at = time.monotonic()
        self._stop_button.disabled = True
        self._draw()
        if self._outputs is not None:
            self._outputs.update_fallback(*self.static_copy())

    def _row_started(self) -> None:
        self._started += 1
        self._changed()

    def _row_ended(self, index: int, transcript: Transcript) -> None:
        self._ended[transcript.status] = self._ended.get(transcript.status, 0) + 1
        usage = transcript.usage
        if usage is not None:
            self._tokens[0] += usage.input_tokens or 0
            self._tokens[1] += usage.output_tokens or 0
        cost = transcript.cost
        if cost is None:
            self._spent = None if transcript.status == "done" else self._spent
        elif self._spent is not None:
            self._spent += cost
        if transcript.status == "error":
            if len(self._failed) < _FAILED_SHOWN:
                self._failed.append((index, transcript))
        else:
            self._recent.append((index, transcript))
        self._changed()

    # -- drawing ---------------------------------------------------------------------------
    def _changed(self) -> None:
        if self._frame_timer is not None:
            return
        wait = self._last_frame + _FRAME_INTERVAL - time.monotonic()
        if wait <= 0:
            self._draw()
        else:
            self._frame_timer = asyncio.get_running_loop().call_later(wait, self._draw)

    def _draw(self) -> None:
        self._frame_timer = None
        self._last_frame = now = time.monotonic()
        self._panel.value = self._html()  # one widget message per frame, for every row
        if self._outputs is not None and now - self._last_fallback >= _FALLBACK_INTERVAL:
            self._last_fallback = now
            self._outputs.update_fallback(*self.static_copy())

    def progress_line(self) -> str:
        """Done, failed, stopped, queued; rows a second; time left; tokens; cost."""
        ended = sum(self._ended.values())
        running = self._started - ended
        queued = self._count - self._started
        parts = [
            f"{self._ended['done']} done",
            f"{self._ended['error']} failed",
            f"{self._ended['stopped']} stopped",
        ]
        if running:
            parts.append(f"{running} running")
        if queued:
            parts.append(f"{queued} queued")
        parts.append(f"of {self._count}")
        if self._began_at is not None:
            end = self._ended_at if self._ended_at is not None else time.monotonic()
            elapsed = end - self._began_at
            rate = ended / elapsed if elapsed > 0 else 0.0
            parts.append(f"{rate:.1f} rows/s")
            left = self._count - ended
            if self._ended_at is None and rate > 0 and left:
                parts.append(f"about {left / rate:.0f} s left")
            elif self._ended_at is not None:
                parts.append(f"in {elapsed:.1f} s")
        parts.append(f"tokens: {self._tokens[0]} in, {self._tokens[1]} out")
        parts.append(format_cost(self._spent))
        return f"{self.title} · " + " · ".join(parts)

    def _html(self) -> str:
        rows = [(index, t, False) for index, t in self._recent]
        rows += [(index, t, True) for index, t in self._failed]
        table = ""
        if rows:
            cells = "".join(
                f'<tr class="{"ipyllm-map-failed" if failed else ""}"><td>{index}</td>'
                f"<td>{html.escape(t.status)}</td><td>{html.escape(_preview(t))}</td></tr>"
                for index, t, failed in rows
            )
            table = f"<table><tr><th>row</th><th>status</th><th>answer</th></tr>{cells}</table>"
        state = "done" if self._ended_at is not None else "streaming"
        return (
            f'<div class="ipyllm-status ipyllm-state-{state}">'
            f"{html.escape(self.progress_line())}</div>{table}"
        )

    # -- showing -------------------------------------------------------------------------
    def static_copy(self) -> tuple[dict[str, str], dict[str, Any]]:
        line = self.progress_line()
        data = {
            "text/html": f"<style>{STYLESHEET}{PROGRESS_CSS}</style>"
            f'<div class="ipyllm ipyllm-static ipyllm-map">{self._html()}</div>',
            "text/plain": line,
        }
        summary = {
            "rows": self._count,
            **self._ended,
            "input_tokens": self._tokens[0],
            "output_tokens": self._tokens[1],
            "cost": self._spent,
        }
        state = "done" if self._ended_at is not None else "streaming"
        return data, {"ipyllm": {"status": state, "map": summary}}


def _preview(transcript: Transcript) -> str:
    if transcript.status == "error" and transcript.error is not None:
        text = f"error: {transcript.error}"
    else:
        text = " ".join(transcript.text.split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
