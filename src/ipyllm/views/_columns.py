"""Several answers side by side (a comparison): one column per answer, each with its own
status line and Stop, one Stop for all, stacked when the output is narrow."""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets as widgets

from ..render import STYLESHEET
from ..transcript import Transcript
from ._answer_view import AnswerView
from ._outputs import hide_fallback_css
from ._parts import ShownWithFallback, plain_html, stop_button
from ._sink import Sink

_FALLBACK_INTERVAL = 2.0
COLUMNS_CSS = """\
.ipyllm-columns { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.ipyllm-columns > .ipyllm-column, .ipyllm-columns > .widget-vbox {
  flex: 1 1 320px; min-width: 0; }
"""


class ColumnsView(ShownWithFallback, widgets.VBox):
    """A batch sink: column ``i`` shows answer ``i``; the header's Stop stops them all."""

    def __init__(
        self,
        titles: list[str],
        *,
        format: Literal["markdown", "text"] = "markdown",
        events: bool = False,
        max_height: str | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.answer_id = uuid.uuid4().hex[:16]
        self.columns = [
            AnswerView(format=format, events=events, max_height=max_height, static=False, title=t)
            for t in titles
        ]
        self.transcripts: list[Transcript] = []
        self._stop_all: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._notes = list(notes or [])
        self._stop_button = stop_button(
            "Stop all",
            "Stop every answer in this cell and close their connections",
            "ipyllm-stop-all",
        )
        self._stop_button.on_click(lambda _button: self._stop_all and self._stop_all())
        self._summary = plain_html(_dom_classes=("ipyllm-status-line",))
        self._summary.layout.flex = "1 1 auto"
        style = f"<style>{STYLESHEET}{COLUMNS_CSS}{hide_fallback_css(self.answer_id)}</style>"
        grid = widgets.Box(self.columns, _dom_classes=("ipyllm-columns",))
        header = widgets.HBox([self._summary, self._stop_button])
        super().__init__([plain_html(value=style), header, grid])
        self.add_class("ipyllm")
        self._set_summary(f"{len(titles)} answers, side by side")

    # -- the batch sink ----------------------------------------------------------------
    def begin(self, count: int, stop_all: Callable[[], None]) -> None:
        self._stop_all = stop_all
        self._stop_button.disabled = False
        self._set_summary(f"{count} answers streaming")
        self._schedule_fallback()

    def row(self, index: int) -> Sink:
        return self.columns[index]

    def end(self, transcripts: list[Transcript]) -> None:
        self.transcripts = transcripts
        if self._timer is not None:
            self._timer.cancel()
        self._stop_button.disabled = True
        states = [t.status for t in transcripts]
        self._set_summary(
            ", ".join(f"{states.count(s)} {s}" for s in ("done", "stopped", "error") if s in states)
        )
        if self._outputs is not None:
            self._outputs.update_fallback(*self.static_copy())

    # -- showing -------------------------------------------------------------------------
    def static_copy(self) -> tuple[dict[str, str], dict[str, Any]]:
        """Every column's static copy, side by side, as one output bundle."""
        copies = [column.static_copy() for column in self.columns]
        page = "".join(
            f'<div class="ipyllm-column">{data["text/html"]}</div>' for data, _ in copies
        )
        notes = "".join(f'<div class="ipyllm-note">{html.escape(n)}</div>' for n in self._notes)
        data = {
            "text/html": (
                f"<style>{COLUMNS_CSS}</style>{notes}<div class='ipyllm-columns'>{page}</div>"
            ),
            "text/markdown": "\n\n---\n\n".join(
                f"### {column.title}\n\n{data['text/markdown']}"
                for column, (data, _) in zip(self.columns, copies, strict=True)
            ),
            "text/plain": "\n\n".join(
                f"[{column.title}]\n{data['text/plain']}"
                for column, (data, _) in zip(self.columns, copies, strict=True)
            ),
        }
        answers = [metadata["ipyllm"] for _, metadata in copies]
        ended = bool(self.transcripts)  # set by end(), once every column has ended
        return data, {"ipyllm": {"status": "done" if ended else "streaming", "answers": answers}}

    def _schedule_fallback(self) -> None:
        if self._outputs is not None:
            self._outputs.update_fallback(*self.static_copy())
        self._timer = asyncio.get_running_loop().call_later(
            _FALLBACK_INTERVAL, self._schedule_fallback
        )

    def _set_summary(self, text: str) -> None:
        self._summary.value = f'<div class="ipyllm-status">{html.escape(text)}</div>'
