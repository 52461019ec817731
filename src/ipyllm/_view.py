"""The live view: a widget that shows a stream as it grows, with a Stop button.

Updates are decoupled from events: events only mark the view dirty, and a
frame is drawn at most ``fps`` times a second (the first one at once, the last
one always). Complete Markdown blocks are sent to the page once, in append-only
segments; only the live tail is re-sent each frame. Only core ipywidgets are
used, so the view works with ipywidgets 7.7 and 8.x, in JupyterLab, Notebook 7,
VS Code and Colab.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import AsyncIterable, Callable
from typing import Any, Literal

import ipywidgets as widgets

from ._adapt import normalized
from ._client import Stream
from ._errors import StreamError
from ._markdown import StreamingMarkdown
from ._static import extras_html, static_bundle
from ._status import status_line
from ._style import STYLESHEET
from ._transcript import Transcript
from .events import RawEvent

_SEGMENT_BYTES = 4096  # an append-only segment is re-sent while it fills, up to this size
_STATUS_INTERVAL = 0.5  # the status line (elapsed time) changes at most this often
_MAX_RAW_EVENTS = 2000  # the teaching panel keeps this many; later ones are counted only


class PlainText:
    """The plain-text counterpart of StreamingMarkdown: escaped text, lines kept as typed."""

    def __init__(self) -> None:
        self.text = ""
        self.frozen: list[str] = []
        self._frozen_upto = 0

    def append(self, delta: str) -> None:
        self.text += delta
        end = self.text.rfind("\n") + 1
        if end > self._frozen_upto:
            self.frozen.append(_pre(self.text[self._frozen_upto : end]))
            self._frozen_upto = end

    @property
    def tail_html(self) -> str:
        tail = self.text[self._frozen_upto :]
        return _pre(tail) if tail else ""

    def finish(self) -> str:
        return "".join(self.frozen) + self.tail_html


def _pre(text: str) -> str:
    return f'<div class="ipyllm-text">{html.escape(text)}</div>'


class _AppendOnlyHTML:
    """HTML that only grows, shown as a column of widgets each sent once it is full."""

    def __init__(self, make: Callable[[], widgets.DOMWidget]) -> None:
        self._make = make
        self.box = widgets.VBox(layout=widgets.Layout(margin="0"))
        self._values: list[list[str]] = []
        self._sizes: list[int] = []
        self._pending: list[str] = []

    def append(self, piece: str) -> None:
        self._pending.append(piece)

    def flush(self) -> None:
        if not self._pending:
            return
        changed: set[int] = set()
        grew = False
        for piece in self._pending:
            if not self._values or self._sizes[-1] + len(piece) > _SEGMENT_BYTES:
                self._values.append([])
                self._sizes.append(0)
                grew = True
            self._values[-1].append(piece)
            self._sizes[-1] += len(piece)
            changed.add(len(self._values) - 1)
        self._pending = []
        children = list(self.box.children)
        while len(children) < len(self._values):
            children.append(self._make())
        for index in sorted(changed):
            children[index].value = "".join(self._values[index])  # type: ignore[attr-defined]
        if grew:
            self.box.children = tuple(children)

    @property
    def html(self) -> str:
        """Everything appended so far, sent or not."""
        return "".join("".join(values) for values in self._values) + "".join(self._pending)

    def clear(self) -> None:
        for child in self.box.children:
            child.close()
        self.box.children = ()
        self._values, self._sizes, self._pending = [], [], []


def _math_html() -> widgets.HTMLMath:
    return widgets.HTMLMath(layout=widgets.Layout(margin="0"))


class ChatView(widgets.VBox):
    """A streaming answer: status line, Stop button, reasoning, body, tool calls, errors.

    ``await view.stream(source)`` shows any async iterable (``ipyllm.stream(...)``,
    strings, SDK chunks...) and returns the :class:`Transcript`; ``view.start(source)``
    does the same in a background task. When the stream ends, a view shown with
    ``display(view)`` replaces itself with a static, sanitized copy that survives
    saving and renders without widgets.
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
        self._final_html: str | None = None
        self._renderer = self._new_renderer()
        self._reasoning_shown = 0  # characters of reasoning already sent
        self._task: asyncio.Task[Transcript] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._frame_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._body_blocks_sent = 0
        self._last_frame = 0.0
        self._last_status = 0.0
        self._raw_count = 0
        self._display_id: str | None = None

        self._status = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", margin="0"))
        self._stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            tooltip="Stop this answer and close its connection",
            disabled=True,
            layout=widgets.Layout(width="auto", margin="0 0 0 8px"),
        )
        self._stop_button.on_click(lambda _button: self.stop())
        self._reasoning_toggle = widgets.Button(
            description="Show reasoning",
            icon="lightbulb-o",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self._reasoning_toggle.on_click(lambda _button: self._toggle_reasoning())
        self._reasoning = _AppendOnlyHTML(widgets.HTML)
        self._reasoning.box.layout.display = "none"
        self._reasoning.box.add_class("ipyllm-reasoning")
        self._body = _AppendOnlyHTML(_math_html)
        self._tail = _math_html()
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
        self._extras = widgets.HTML(layout=widgets.Layout(margin="0"))
        self._raw = _AppendOnlyHTML(widgets.HTML)
        self._raw.box.add_class("ipyllm-raw")
        self._raw.box.layout.display = "flex" if events else "none"
        header = widgets.HBox(
            [self._status, self._stop_button],
            layout=widgets.Layout(align_items="center", margin="0"),
        )
        self._notes = widgets.HTML(_notes_html(self.notes), layout=widgets.Layout(margin="0"))
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

    # -- public API -----------------------------------------------------------
    async def stream(self, source: AsyncIterable[Any]) -> Transcript:
        """Show ``source`` until it ends or Stop is pressed; return its transcript.

        A stop (button or :meth:`stop`) returns normally with ``status == "stopped"``;
        a failure is shown in the view and kept in ``transcript.error``.
        """
        task = self.start(source)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Our caller was cancelled (not Stop): stop the stream with it.
            task.cancel()
            raise

    def start(self, source: AsyncIterable[Any]) -> asyncio.Task[Transcript]:
        """Start showing ``source`` in a background task and return the task at once."""
        if self._task is not None:
            raise RuntimeError("a ChatView shows one stream; create a new view for another")
        source_keeps_transcript = isinstance(source, Stream)
        if source_keeps_transcript:
            self.transcript = source.transcript
        else:
            self.transcript = Transcript(provider=self.title or "stream", model="")
        if self.transcript.status == "pending":
            self.transcript.start()
        self._loop = asyncio.get_running_loop()
        self._stop_button.disabled = False
        self._task = self._loop.create_task(self._consume(source, source_keeps_transcript))
        self._set_status(status_line(self.transcript))  # "waiting...", not "ready", at once
        self._tick()
        return self._task

    def stop(self) -> None:
        """Stop the stream (as the Stop button does): cancel it and close its connection.

        Safe to call from any thread, before the first token, mid-stream or after the end.
        """
        if self._loop is not None and self._task is not None and not self._task.done():
            self._stop_requested = True
            self._loop.call_soon_threadsafe(self._task.cancel)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def display(self) -> None:
        """Show the view with a display id, so that it can become static when it ends."""
        from IPython.display import display

        self._display_id = uuid.uuid4().hex
        display(self._widget_bundle(), raw=True, display_id=self._display_id)

    def _ipython_display_(self) -> None:
        self.display()

    # -- consuming ---------------------------------------------------------------
    async def _consume(
        self, source: AsyncIterable[Any], source_keeps_transcript: bool
    ) -> Transcript:
        transcript = self.transcript
        assert transcript is not None
        try:
            async for event in normalized(source):
                if isinstance(event, RawEvent):
                    self._add_raw(event)
                elif not source_keeps_transcript:
                    transcript.apply(event)
                self._changed()
            if not source_keeps_transcript and transcript.server_error is not None:
                error = transcript.server_error
                raise StreamError(f"the stream reported an error: {error.message}")
            transcript.end("done")
        except asyncio.CancelledError:
            transcript.end("stopped")
            if not self._stop_requested:
                self._final_frame()
                raise
        except StreamError as error:
            error.transcript = transcript
            transcript.end("error", error)
        except Exception as exc:  # a foreign source failed: show it, keep the text
            error = StreamError(f"the stream failed: {type(exc).__name__}: {exc}")
            error.transcript = transcript
            transcript.end("error", error)
        self._final_frame()
        return transcript

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

    # -- drawing -----------------------------------------------------------------
    def _changed(self) -> None:
        """Events arrived: draw now if a frame is due, else make sure one is scheduled."""
        if self._frame_timer is not None:
            return
        wait = self._last_frame + self.frame_interval - time.monotonic()
        if wait <= 0:
            self._frame()
        else:
            self._frame_timer = asyncio.get_running_loop().call_later(wait, self._frame)

    def _frame(self) -> None:
        self._frame_timer = None
        self._last_frame = time.monotonic()
        transcript = self.transcript
        assert transcript is not None
        new_text = transcript.text[len(self._renderer.text) :]
        if new_text:
            self._renderer.append(new_text)
            tail = self._renderer.tail_html  # first: rendering the tail may freeze blocks
            self._send_frozen_blocks()
            self._tail.value = tail
        self._draw_reasoning(transcript)
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

    def _final_frame(self) -> None:
        """The last state always arrives, whatever the throttle says."""
        for timer in (self._frame_timer, self._tick_timer):
            if timer is not None:
                timer.cancel()
        self._frame_timer = self._tick_timer = None
        transcript = self.transcript
        assert transcript is not None
        self._renderer.append(transcript.text[len(self._renderer.text) :])
        final_html = self._final_html = self._renderer.finish()
        self._draw_reasoning(transcript)
        self._extras.value = extras_html(transcript)
        self._raw.flush()
        self._stop_button.disabled = True
        self._set_status(status_line(transcript))
        self._notes.value = _notes_html(self._all_notes())
        self._show_final_body(final_html)
        if self.static:
            self.replace_with_static()

    def _show_final_body(self, final_html: str) -> None:
        sent = "".join(self._renderer.frozen[: self._body_blocks_sent])
        if final_html.startswith(sent):
            self._tail.value = final_html[len(sent) :]
        else:  # the whole text rendered differently at the end: show it in one piece
            self._body.clear()
            self._tail.value = final_html

    def _draw_reasoning(self, transcript: Transcript) -> None:
        reasoning = transcript.reasoning
        if len(reasoning) > self._reasoning_shown:
            self._reasoning.append(_pre(reasoning[self._reasoning_shown :]))
            self._reasoning_shown = len(reasoning)
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

    def replace_with_static(self) -> None:
        """Put a static, sanitized copy of the finished answer where the view was shown.

        It renders with no widget state, so the answer survives saving and shows in
        every viewer. Does nothing until the stream has ended, or if the view was not
        shown with :meth:`display` (``display(view)`` does that).
        """
        if self._display_id is None or self._final_html is None or self.transcript is None:
            return
        from IPython.display import update_display

        data, metadata = static_bundle(
            self.transcript,
            self._final_html,
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
