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
    StreamingJSON,
    StreamingMarkdown,
    extras_html,
    pre_html,
    static_bundle,
    status_line,
)
from ..transcript import Transcript
from ._budget import MessageBudget
from ._outputs import NotebookOutputs, someone_watching, widget_bundle
from ._parts import ShownWithFallback, ViewParts, notes_html

_STATUS_INTERVAL = 0.5  # the status line (elapsed time) changes at most this often
_FALLBACK_INTERVAL = 2.0  # the static fallback output is brought up to date this often
_MAX_RAW_EVENTS = 2000  # the teaching panel keeps this many; later ones are counted only
_MESSAGES_PER_SECOND = 20  # per view, whatever the token rate
# Frozen blocks leave the live tail's widget as soon as they freeze. Keeping them in it
# until they filled a segment made fewer messages, but moving kilobytes from the tail to a
# new segment at once made the page jump under a reader scrolled up in a height-limited
# view (seen in the browser tests); the message budget bounds the count instead.
_SEAL_BYTES = 1
# How tall a live view grows when no max_height is given; past it, it follows its own end.
# Answers streaming above the reader then stop moving the page: JupyterLab's "full"
# windowing turns the browser's scroll anchoring off. The static copy is not limited.
LIVE_MAX_HEIGHT = "40em"


class AnswerView(ShownWithFallback, widgets.VBox):
    """A streaming answer: status line, Stop button, reasoning, body, tool calls, errors.

    A sink (see :class:`ipyllm.views.Sink`): it is given the transcript, its events and
    a stop function, and shows them; it starts nothing itself. Shown with
    :meth:`display` (or ``display(view)``), it puts a static, sanitized fallback beside
    itself, kept current, which a page shows where the widget cannot render (a
    reopened notebook whose kernel restarted, nbconvert, GitHub); the widget itself
    stays alive, so a page that reloads shows the answer live and then complete.
    With ``static=False`` there is no fallback, and :meth:`replace_with_static` puts
    the static copy in the widget's place (what headless runs want).
    ``format="json"``, and any answer asked for with a schema, shows the JSON as it grows,
    indented and highlighted.
    """

    def __init__(
        self,
        *,
        format: Literal["markdown", "text", "json"] = "markdown",
        events: bool = False,
        max_height: str | None = None,
        allow_images: bool = False,
        fps: float = 20.0,
        static: bool = True,
        title: str | None = None,
        notes: list[str] | None = None,
        error_hint: Callable[[BaseException], str | None] | None = None,
    ) -> None:
        self.format = format
        self.events = events
        self.max_height = max_height
        self.allow_images = allow_images
        self.frame_interval = 1.0 / fps
        self.static = static
        self.title = title
        self.notes = list(notes or [])
        self.error_hint = error_hint
        """Advice shown after the error of a failed answer, from where it was asked."""
        self.transcript: Transcript | None = None
        self.final_html: str | None = None
        """The whole answer's HTML, once it has ended."""
        self.answer_id = uuid.uuid4().hex[:16]
        """Names this answer's outputs in the notebook (never a secret, never content)."""
        self._outputs: NotebookOutputs | None = None
        self._replace_at_end = False
        self._budget = MessageBudget(_MESSAGES_PER_SECOND)
        self._last_fallback = 0.0
        self._sealed_blocks = 0  # frozen blocks already in sealed body segments
        self._tail_pending: str | None = None  # the tail widget's next value, not sent yet
        self._renderer = self._new_renderer()
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._stop: Callable[[], None] | None = None
        self._frame_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_frame = 0.0
        self._last_status = 0.0
        self._raw_count = 0

        parts = ViewParts(
            self.answer_id,
            max_height=max_height or LIVE_MAX_HEIGHT,
            events=events,
            notes=self.notes,
        )
        self._status, self._stop_button = parts.status, parts.stop_button
        self._reasoning_toggle, self._reasoning = parts.reasoning_toggle, parts.reasoning
        self._body, self._tail, self._extras = parts.body, parts.tail, parts.extras
        self._raw, self._notes = parts.raw, parts.notes
        self._stop_button.on_click(lambda _button: self._request_stop())
        self._reasoning_toggle.on_click(lambda _button: self._toggle_reasoning())
        super().__init__(parts.children)
        self.add_class("ipyllm")
        self._set_status("ready")

    # -- the sink -----------------------------------------------------------------
    def begin(self, transcript: Transcript, stop: Callable[[], None]) -> None:
        """An answer starts: show its status at once and let Stop call ``stop``."""
        if self.transcript is not None:
            raise RuntimeError("a view shows one answer; create a new view for another")
        self.transcript = transcript
        if transcript.schema is not None and self.format == "markdown":
            # A structured answer is JSON: shown growing, indented and highlighted.
            self.format = "json"
            self._renderer = self._new_renderer()
        self._stop = stop
        self._loop = asyncio.get_running_loop()
        self._stop_button.disabled = False
        self._set_status(status_line(transcript))  # "waiting...", not "ready", at once
        self._budget.spend(2, time.monotonic())
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
        self._extras.value = extras_html(transcript, self._hint())
        self._raw.flush()
        self._stop_button.disabled = True
        self._set_status(status_line(transcript))
        self._notes.value = notes_html(self._all_notes())
        self._show_final_body(final_html)
        if self._replace_at_end:
            self.replace_with_static()
        elif self._outputs is not None:
            self._outputs.update_fallback(*self.static_copy(final_html))

    # -- showing ----------------------------------------------------------------------
    def display(self, *, fallback: bool = True) -> None:
        """Show the view in the current cell, with its static fallback unless ``static=False``
        (or ``fallback=False``).

        Where nobody watches (nbclient, nbconvert, papermill), there is no fallback: the
        static copy takes the widget's place when the answer ends, so the saved notebook
        holds the answer and no widget.
        """
        self._outputs = NotebookOutputs(self.answer_id)
        self._replace_at_end = self.static and not someone_watching()
        watched = fallback and self.static and not self._replace_at_end
        copy = self.static_copy(self._renderer.html) if watched else None
        self._outputs.show(widget_bundle(self.model_id), copy)

    def replace_with_static(self) -> None:
        """Put the static, sanitized copy of the finished answer where the view was shown,
        and close the widgets (headless runs, where no page will ever show them).

        Does nothing until the answer has ended, or if the view was not shown with
        :meth:`display` (``display(view)`` does that).
        """
        if self.final_html is not None:
            super().replace_with_static()

    def static_copy(self, body_html: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
        """The static, sanitized copy of the answer as it stands (``body_html``: its HTML)."""
        if body_html is None:
            body_html = self.final_html if self.final_html is not None else self._renderer.html
        transcript = self.transcript
        if transcript is None:  # shown before its answer began
            transcript = Transcript(provider=self.title or "", model="")
        return static_bundle(
            transcript,
            body_html,
            STYLESHEET,
            self._all_notes(),
            raw_events_html=self._raw.html if self._raw_count else None,
            raw_events_open=self.events,
            max_height=self.max_height,
            error_hint=self._hint(),
            json_answer=self.format == "json",
        )

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
        if self._frame_timer is None:
            self._schedule(self._last_frame + self.frame_interval - time.monotonic())

    def _schedule(self, wait: float) -> None:
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
        """Draw what changed as few widget messages as possible, within the budget.

        Frozen blocks join the live tail's widget until they fill a segment, so a
        frame is usually one message; a segment is sealed (sent once, whole) when full.
        """
        self._frame_timer = None
        now = time.monotonic()
        transcript = self.transcript
        assert transcript is not None
        if self._take_pending_text():
            tail = self._renderer.tail_html  # first: rendering the tail may freeze blocks
            self._seal_full_segment()
            value = "".join(self._renderer.frozen[self._sealed_blocks :]) + tail
            self._tail_pending = value if value != self._tail.value else None
        wait = self._budget.wait(self._costs(transcript, now), now)
        if wait > 0:  # over budget: draw later (the text waits in the renderer)
            self._frame_timer = asyncio.get_running_loop().call_later(wait, self._frame)
            return
        self._last_frame = now
        sent = self._send_body() + self._draw_reasoning() + self._raw.flush()
        extras = extras_html(transcript)
        if extras != self._extras.value:
            self._extras.value = extras
            sent += 1
        if now - self._last_status >= _STATUS_INTERVAL:
            self._set_status(status_line(transcript))
            sent += 1
        self._budget.spend(sent, now)
        if self._outputs is not None and now - self._last_fallback >= _FALLBACK_INTERVAL:
            self._last_fallback = now  # an output message, not a widget message
            self._outputs.update_fallback(*self.static_copy(self._renderer.html))

    def _costs(self, transcript: Transcript, now: float) -> int:
        """Widget messages the next frame would send."""
        cost = self._body.pending + self._raw.pending + (1 if self._pending_reasoning else 0)
        cost += 0 if self._tail_pending is None else 1
        cost += 1 if now - self._last_status >= _STATUS_INTERVAL else 0
        return cost + (1 if extras_html(transcript) != self._extras.value else 0)

    def _tick(self) -> None:
        """Keep the status line's clock moving while nothing arrives (waiting, stalls)."""
        self._tick_timer = None
        transcript = self.transcript
        if transcript is None or transcript.finished:
            return
        now = time.monotonic()
        if now - self._last_status >= _STATUS_INTERVAL and not self._budget.wait(1, now):
            self._set_status(status_line(transcript))
            self._budget.spend(1, now)
        assert self._loop is not None
        self._tick_timer = self._loop.call_later(_STATUS_INTERVAL, self._tick)

    def _seal_full_segment(self) -> None:
        """Move the frozen blocks out of the tail's widget once they reach _SEAL_BYTES."""
        frozen = self._renderer.frozen
        unsealed = frozen[self._sealed_blocks :]
        if sum(len(block) for block in unsealed) >= _SEAL_BYTES:
            # Frozen pieces fill 4 KB segments: a segment is sent again while it fills,
            # then never; the tail's message stays small.
            self._body.append("".join(unsealed))
            self._sealed_blocks = len(frozen)

    def _send_body(self) -> int:
        """Send the sealed segments and the tail, if they changed; returns the messages."""
        sent = self._body.flush()
        if self._tail_pending is not None:
            self._tail.value = self._tail_pending
            self._tail_pending = None
            sent += 1
        return sent

    def _show_final_body(self, final_html: str) -> None:
        sealed = "".join(self._renderer.frozen[: self._sealed_blocks])
        self._body.flush()
        if final_html.startswith(sealed):
            self._tail.value = final_html[len(sealed) :]
        else:  # the whole text rendered differently at the end: show it in one piece
            self._body.clear()
            self._tail.value = final_html
        self._tail_pending = None

    def _draw_reasoning(self) -> int:
        if not self._pending_reasoning:
            return 0
        self._reasoning.append(pre_html("".join(self._pending_reasoning)))
        self._pending_reasoning = []
        sent = self._reasoning.flush()
        if self._reasoning_toggle.layout.display != "flex":
            self._reasoning_toggle.layout.display = "flex"
            sent += 1
        return sent

    def _hint(self) -> str | None:
        error = self.transcript.error if self.transcript is not None else None
        return self.error_hint(error) if error is not None and self.error_hint else None

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

    def _new_renderer(self) -> StreamingMarkdown | PlainText | StreamingJSON:
        if self.format == "text":
            return PlainText()
        if self.format == "json":
            return StreamingJSON()
        return StreamingMarkdown(allow_images=self.allow_images)
