"""Layer 8, the chat API: ``chat`` shows an answer in the notebook without blocking the kernel.

Where somebody can click (JupyterLab, Notebook 7, VS Code, Colab), the answer
streams in a background task on the kernel's own event loop and the call returns
at once, so Stop works and the kernel stays usable. Where nobody can (nbclient,
nbconvert --execute, papermill) the call waits until the answer is complete, so
that it is saved. In a terminal, the answer is printed as it arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Generator
from typing import TYPE_CHECKING, Any, Literal

from . import runner
from .client import Source, Stream, as_source, stream
from .dialects import Message
from .transcript import Transcript
from .views import AnswerView, TerminalSink

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import StreamOptions


class ChatView(AnswerView):
    """The answer widget, with the means to run a stream into itself.

    ``await view.stream(source)`` shows any async iterable (``ipyllm.stream(...)``,
    strings, SDK chunks...) and returns the :class:`Transcript`; ``view.start(source)``
    does the same in a background task; ``view.stop()`` (or the Stop button) stops it.
    """

    _run: runner.Run | None = None

    async def stream(self, source: AsyncIterable[Any]) -> Transcript:
        """Show ``source`` until it ends or Stop is pressed; return its transcript.

        A stop (button or :meth:`stop`) returns normally with ``status == "stopped"``;
        a failure is shown in the view and kept in ``transcript.error``.
        """
        self._check_unused()
        return await runner.drive(as_source(source, title=self.title), self)

    def start(self, source: AsyncIterable[Any]) -> asyncio.Task[Transcript]:
        """Start showing ``source`` in a background task and return the task at once."""
        self._check_unused()
        self._run = runner.start(as_source(source, title=self.title), self)
        assert self._run._task is not None
        return self._run._task

    def show(self, source: AsyncIterable[Any], *, wait: bool | None = None) -> runner.Run:
        """Show ``source`` the way ``%%chat`` shows an answer, and return its handle.

        Where somebody watches (JupyterLab, Notebook 7, Voilà, VS Code) it streams in the
        background and this returns at once; where nobody does (nbclient, nbconvert,
        papermill) it runs to the end first, so the saved notebook holds it; ``wait``
        forces either. ``await`` the handle for the transcript.
        """
        self._check_unused()
        answer = as_source(source, title=self.title)
        mode = runner.run_mode(wait)
        if mode == "background":
            self._run = runner.start(answer, self)
        elif mode == "blocking":
            self._run = runner.run_blocking(answer, self)
        else:  # a terminal: no page to show a widget, print it
            self._run = runner.run_blocking(answer, TerminalSink())
        return self._run

    def stop(self) -> None:
        """Stop the stream (as the Stop button does): cancel it and close its connection.

        Safe to call from any thread, before the first token, mid-stream or after the end.
        """
        self._request_stop()

    @property
    def done(self) -> bool:
        transcript = self.transcript
        return transcript is not None and transcript.finished

    def _check_unused(self) -> None:
        if self.transcript is not None:
            raise RuntimeError("a ChatView shows one stream; create a new view for another")


class ChatResult:
    """A handle on an answer, usable while it streams: ``.text`` so far, ``await`` it, stop it."""

    def __init__(self, answer: Source, view: ChatView | None, mode: runner.Mode) -> None:
        self.stream = answer
        self.view = view
        self.mode = mode
        self._run: runner.Run | None = None

    @property
    def transcript(self) -> Transcript:
        return self.stream.transcript

    @property
    def text(self) -> str:
        """The answer so far (all of it once ``done``)."""
        return self.transcript.text

    @property
    def done(self) -> bool:
        return self.transcript.finished

    def stop(self) -> None:
        """Stop the answer and close its connection; the partial text is kept."""
        if self._run is not None:
            self._run.stop()

    def __await__(self) -> Generator[Any, None, Transcript]:
        return self._wait().__await__()

    async def _wait(self) -> Transcript:
        if self._run is not None:
            await self._run
        return self.transcript

    def __repr__(self) -> str:
        transcript = self.transcript
        return (
            f"<ChatResult {transcript.provider}/{transcript.model} {transcript.status}, "
            f"{len(transcript.text)} characters>"
        )


def chat(
    prompt_or_messages: str | list[Message],
    *,
    wait: bool | None = None,
    format: Literal["markdown", "text"] = "markdown",
    events: bool = False,
    max_height: str | None = None,
    notes: list[str] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
    error_hint: Callable[[BaseException], str | None] | None = None,
    **stream_options: Unpack[StreamOptions],
) -> ChatResult:
    """Stream an answer into the notebook and return a :class:`ChatResult` at once.

    ``wait=None`` waits only where no one can click (headless runs) or in a terminal;
    ``True``/``False`` force it. ``on_done`` is called with the transcript when the
    answer ends, however it ends; ``error_hint`` gives advice shown after the error of
    an answer that failed (or None). Other keyword arguments are those of
    :func:`ipyllm.stream`.
    """
    answer: Stream = stream(prompt_or_messages, raw=events, **stream_options)
    mode = runner.run_mode(wait)
    if mode == "terminal":
        result = ChatResult(answer, None, mode)
        result._run = runner.run_blocking(answer, TerminalSink())
        if on_done is not None:
            on_done(answer.transcript)
        return result
    view = ChatView(
        format=format,
        events=events,
        max_height=max_height,
        notes=notes,
        static=mode == "background",
        error_hint=error_hint,
    )
    result = ChatResult(answer, view, mode)
    view.display()
    if mode == "background":
        result._run = view._run = runner.start(answer, view)
        if on_done is not None:
            done_callback = on_done
            assert result._run._task is not None
            result._run._task.add_done_callback(lambda _task: done_callback(answer.transcript))
    else:
        result._run = view._run = runner.run_blocking(answer, view)
        view.replace_with_static()
        if on_done is not None:
            on_done(answer.transcript)
    return result


stop_all = runner.stop_all
