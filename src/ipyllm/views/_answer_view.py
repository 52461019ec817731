"""The live view of one answer: a widget sink with a status line and a Stop button.

Updates are decoupled from events: events only mark the view dirty, and a frame
is drawn at most ``fps`` times a second (the first one at once, the last one
always). Complete Markdown blocks are sent to the page once, in append-only
segments; only the live tail is re-sent each frame. Only core ipywidgets are
used, so the view works with ipywidgets 7.7 and 8.x, in JupyterLab, Notebook 7,
VS Code and Colab. Each part carries a CSS class (``ipyllm-status``,
``ipyllm-stop``, ``ipyllm-body``, ``ipyllm-tail``, ``ipyllm-extras``...), which is
how pages, styles and tests find it.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets as widgets

from ..events import Event, RawEvent, ReasoningDelta, TextDelta
from ..render import (
    STYLESHEET,
    PlainText,
    StreamingMarkdown,
    extras_html,
    pre_html,
    static_bundle,
    status_line,
)
from ..transcript import Transcript
from ._segments import AppendOnlyHTML

_STATUS_INTERVAL = 0.5  # the status line (elapsed time) changes at most this often
_MAX_RAW_EVENTS = 2000  # the teaching panel keeps this many; later ones are counted only


def _math_html() -> widgets.HTMLMath:
    return widgets.HTMLMath(layout=widgets.Layout(margin="0"))


def _html() -> widgets.HTML:
    return widgets.HTML(layout=widgets.Layout(margin="0"))


class AnswerView(widgets.VBox):
    """A streaming answer: status line, Stop button, reasoning, body, tool calls, errors.

    A sink (see :class:`ipyllm.views.Sink`): it is given the transcript, its events and
    a stop function, and shows them; it starts nothing itself. Shown with
    :meth:`display` (or ``display(view)``), it replaces itself with a static,
    sanitized copy when the answer ends, which survives saving and renders
    without widgets.
    """

    def __init__(
        self,
        *,
        format: Literal["markdown", "text"] = "markdown",
        events: bool = False,
        max_height: str | None = None,
        allow_images: bool = False,
        fps: float = 20.0,
        static: bool = True,
        title: str | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.format = format
        self.max_height = max_height
        self.allow_images = allow_images
        self.frame_interval = 1.0 / fps
        self.static = static
        self.title = title
        self.notes = list(notes or [])
        self.transcript: Transcript | None = None
        self.final_html: str | None = None
        """The whole answer's HTML, once it has ended."""
        self._renderer = self._new_renderer()
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._stop: Callable[[], None] | None = None
        self._frame_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body_blocks_sent = 0
        self._last_frame = 0.0
        self._last_status = 0.0
        self._raw_count = 0
        self._display_id: str | None = None

        self._status = _html()
        self._status.layout.flex = "1 1 auto"
        self._status.add_class("ipyllm-status-line")
        self._stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            tooltip="Stop this answer and close its connection",
            disabled=True,
            layout=widgets.Layout(width="auto", margin="0 0 0 8px"),
        )
        self._stop_button.add_class("ipyllm-stop")
        self._stop_button.on_click(lambda _button: self._request_stop())
        self._reasoning_toggle = widgets.Button(
            description="Show reasoning",
            icon="lightbulb-o",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self._reasoning_toggle.add_class("ipyllm-reasoning-toggle")
        self._reasoning_toggle.on_click(lambda _button: self._toggle_reasoning())
        self._reasoning = AppendOnlyHTML(widgets.HTML, "ipyllm-reasoning")
        self._reasoning.box.layout.display = "none"
        self._body = AppendOnlyHTML(_math_html, "ipyllm-blocks")
        self._tail = _math_html()
        self._tail.add_class("ipyllm-tail")
        # flex 0 0 auto: under a max height the body must overflow its scroller, not shrink.
        body = widgets.VBox(
            [self._body.box, self._tail], layout=widgets.Layout(margin="0", flex="0 0 auto")
        )
        # column-reverse keeps the newest text in view unless the reader scrolls up.
        self._scroller = widgets.Box(
            [body],
            layout=widgets.Layout(
                max_height=max_height,
                overflow="auto" if max_height else None,
                flex_flow="column-reverse" if max_height else "column",
            ),
        )
        self._scroller.add_class("ipyllm-body")
        self._scroller.add_class("ipyllm-md")  # the renderer's stylesheet is scoped to it
        self._extras = _html()
        self._extras.add_class("ipyllm-extras")
        self._raw = AppendOnlyHTML(widgets.HTML, "ipyllm-raw")
        self._raw.box.layout.display = "flex" if events else "none"
        header = widgets.HBox(
            [self._status, self._stop_button],
            layout=widgets.Layout(align_items="center", margin="0"),
        )
        self._notes = widgets.HTML(_notes_html(self.notes), layout=widgets.Layout(margin="0"))
        self._notes.add_class("ipyllm-notes")
        super().__init__(
            [
                widgets.HTML(f"<style>{STYLESHEET}</style>", layout=widgets.Layout(margin="0")),
                header,
                self._notes,
                self._reasoning_toggle,
                self._reasoning.box,
                self._scroller,
                self._extras,
                self._raw.box,
            ]
        )
        self.add_class("ipyllm")
        self._set_status("ready")

    # -- the sink -----------------------------------------------------------------
    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None:
        """An answer starts: show its status at once and let Stop call ``stop``."""
        if self.transcript is not None:
            raise RuntimeError("a view shows one answer; create a new view for another")
        self.transcript = transcript
        self._stop = stop
        self._loop = asyncio.get_running_loop()
        self._stop_button.disabled = False
        self._set_status(status_line(transcript))  # "waiting...", not "ready", at once
        self._tick()

    def feed(self, event: Event | RawEvent) -> None:
        if isinstance(event, TextDelta):
            self._pending_text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._pending_reasoning.append(event.text)
        elif isinstance(event, RawEvent):
            self._add_raw(event)
        self._changed()

    def end(self, transcript: Transcript) -> None:
        """The last state always arrives, whatever the throttle says."""
        for timer in (self._frame_timer, self._tick_timer):
            if timer is not None:
                timer.cancel()
        self._frame_timer = self._tick_timer = None
        self.transcript = transcript
        self._take_pending_text()
        final_html = self.final_html = self._renderer.finish()
        self._draw_reasoning()
        self._extras.value = extras_html(transcript)
        self._raw.flush()
        self._stop_button.disabled = True
        self._set_status(status_line(transcript))
        self._notes.value = _notes_html(self._all_notes())
        self._show_final_body(final_html)
        if self.static:
            self.replace_with_static()

    # -- showing ----------------------------------------------------------------------
    def display(self) -> None:
        """Show the view with a display id, so that it can become static when it ends."""
        from IPython.display import display

        self._display_id = uuid.uuid4().hex
        display(self._widget_bundle(), raw=True, display_id=self._display_id)

    def _ipython_display_(self) -> None:
        self.display()

    def replace_with_static(self) -> None:
        """Put a static, sanitized copy of the finished answer where the view was shown.

        It renders with no widget state, so the answer survives saving and shows in
        every viewer. Does nothing until the answer has ended, or if the view was not
        shown with :meth:`display` (``display(view)`` does that).
        """
        if self._display_id is None or self.final_html is None or self.transcript is None:
            return
        from IPython.display import update_display

        data, metadata = static_bundle(
            self.transcript,
            self.final_html,
            STYLESHEET,
            self._all_notes(),
            raw_events_html=self._raw.html if self._raw_count else None,
            max_height=self.max_height,
        )
        update_display(data, raw=True, metadata=metadata, display_id=self._display_id)
        self.close_all_children()

    def close_all_children(self) -> None:
        """Close this view's widgets (their comms), once its static copy has replaced it."""
        for widget in _descendants(self):
            widget.close()

    # -- drawing -----------------------------------------------------------------------
    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop()

    def _add_raw(self, event: RawEvent) -> None:
        self._raw_count += 1
        if self._raw_count > _MAX_RAW_EVENTS:
            return
        name = "" if event.event in (None, "message") else f"{event.event} "
        self._raw.append(
            '<div class="ipyllm-raw-event"><span class="ipyllm-raw-time">'
            f"{event.time * 1000:8.1f} ms</span> {html.escape(name)}"
            f"{html.escape(event.data)}</div>"
        )

    def _changed(self) -> None:
        """Events arrived: draw now if a frame is due, else make sure one is scheduled."""
        if self._frame_timer is not None:
            return
        wait = self._last_frame + self.frame_interval - time.monotonic()
        if wait <= 0:
            self._frame()
        else:
            self._frame_timer = asyncio.get_running_loop().call_later(wait, self._frame)

    def _take_pending_text(self) -> bool:
        if not self._pending_text:
            return False
        self._renderer.append("".join(self._pending_text))
        self._pending_text = []
        return True

    def _frame(self) -> None:
        self._frame_timer = None
        self._last_frame = time.monotonic()
        transcript = self.transcript
        assert transcript is not None
        if self._take_pending_text():
            tail = self._renderer.tail_html  # first: rendering the tail may freeze blocks
            self._send_frozen_blocks()
            self._tail.value = tail
        self._draw_reasoning()
        self._extras.value = extras_html(transcript)
        self._raw.flush()
        if self._last_frame - self._last_status >= _STATUS_INTERVAL:
            self._set_status(status_line(transcript))

    def _tick(self) -> None:
        """Keep the status line's clock moving while nothing arrives (waiting, stalls)."""
        self._tick_timer = None
        transcript = self.transcript
        if transcript is None or transcript.finished:
            return
        if time.monotonic() - self._last_status >= _STATUS_INTERVAL:
            self._set_status(status_line(transcript))
        assert self._loop is not None
        self._tick_timer = self._loop.call_later(_STATUS_INTERVAL, self._tick)

    def _send_frozen_blocks(self) -> None:
        for block in self._renderer.frozen[self._body_blocks_sent :]:
            self._body.append(block)
        self._body_blocks_sent = len(self._renderer.frozen)
        self._body.flush()

    def _show_final_body(self, final_html: str) -> None:
        sent = "".join(self._renderer.frozen[: self._body_blocks_sent])
        if final_html.startswith(sent):
            self._tail.value = final_html[len(sent) :]
        else:  # the whole text rendered differently at the end: show it in one piece
            self._body.clear()
            self._tail.value = final_html

    def _draw_reasoning(self) -> None:
        if self._pending_reasoning:
            self._reasoning.append(pre_html("".join(self._pending_reasoning)))
            self._pending_reasoning = []
            self._reasoning.flush()
            self._reasoning_toggle.layout.display = "flex"

    def _all_notes(self) -> list[str]:
        return self.notes + (self.transcript.notes if self.transcript is not None else [])

    def _toggle_reasoning(self) -> None:
        shown = self._reasoning.box.layout.display != "none"
        self._reasoning.box.layout.display = "none" if shown else "flex"
        self._reasoning_toggle.description = "Show reasoning" if shown else "Hide reasoning"

    def _set_status(self, text: str) -> None:
        self._last_status = time.monotonic()
        transcript = self.transcript
        waiting = transcript is not None and transcript.first_token_at is None
        spinner = (
            '<span class="ipyllm-spinner"></span>'
            if waiting and not (transcript and transcript.finished)
            else ""
        )
        state = transcript.status if transcript is not None else "ready"
        self._status.value = (
            f'<div class="ipyllm-status ipyllm-state-{state}">{spinner}{html.escape(text)}</div>'
        )

    def _widget_bundle(self) -> dict[str, Any]:
        # Built by hand: ipywidgets 7 has no _repr_mimebundle_, and both speak protocol 2.
        return {
            "text/plain": "ChatView (a live widget: run the cell in Jupyter to see it)",
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.model_id,
            },
        }

    def _new_renderer(self) -> StreamingMarkdown | PlainText:
        if self.format == "text":
            return PlainText()
        return StreamingMarkdown(allow_images=self.allow_images)


def _notes_html(notes: list[str]) -> str:
    return "".join(f'<div class="ipyllm-note">{html.escape(note)}</div>' for note in notes)


def _descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """A widget, its children, and the layout and style models each one owns."""
    found = []
    for child in getattr(widget, "children", ()):
        found += _descendants(child)
    for owned in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(owned, widgets.Widget):
            found.append(owned)
    found.append(widget)
    return found
