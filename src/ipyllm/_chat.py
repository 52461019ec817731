"""``ipyllm.chat``: show an answer in the notebook without blocking the kernel.

Where somebody can click (JupyterLab, Notebook 7, VS Code, Colab), the answer
streams in a background task on the kernel's own event loop and the call returns
at once, so Stop works and the kernel stays usable. Where nobody can (nbclient,
nbconvert --execute, papermill) the call waits until the answer is complete, so
that it is saved. In a terminal, the answer is printed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Literal, TypeVar

from ._client import Message, Stream, stream
from ._errors import StreamError
from ._status import status_line
from ._transcript import Transcript
from ._view import ChatView
from .events import ReasoningDelta, TextDelta

Mode = Literal["background", "blocking", "terminal"]
T = TypeVar("T")

_running: set[ChatResult] = set()  # strong references: asyncio keeps only weak ones


class ChatResult:
    """A handle on an answer, usable while it streams: ``.text`` so far, ``await`` it, stop it."""

    def __init__(self, answer: Stream, view: ChatView | None, mode: Mode) -> None:
        self.stream = answer
        self.view = view
        self.mode = mode
        self._task: asyncio.Task[Transcript] | None = None
        self._stop_thread: Callable[[], None] | None = None

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
        if self.view is not None:
            self.view.stop()
        if self._stop_thread is not None:
            self._stop_thread()

    def __await__(self) -> Generator[Any, None, Transcript]:
        return self._wait().__await__()

    async def _wait(self) -> Transcript:
        if self._task is not None:
            await asyncio.shield(self._task)
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
    **stream_options: Any,
) -> ChatResult:
    """Stream an answer into the notebook and return a :class:`ChatResult` at once.

    ``wait=None`` waits only where no one can click (headless runs) or in a terminal;
    ``True``/``False`` force it. ``on_done`` is called with the transcript when the
    answer ends, however it ends. Other keyword arguments are those of
    :func:`ipyllm.stream`.
    """
    answer = stream(prompt_or_messages, raw=events, **stream_options)
    mode = run_mode(wait)
    if mode == "terminal":
        result = ChatResult(answer, None, mode)
        _run_in_thread(lambda: _print_stream(answer), result)
        if on_done is not None:
            on_done(answer.transcript)
        return result
    view = ChatView(
        format=format,
        events=events,
        max_height=max_height,
        notes=notes,
        static=mode == "background",
    )
    result = ChatResult(answer, view, mode)
    view.display()
    if mode == "background":
        result._task = view.start(answer)
        _running.add(result)

        def finished(_task: asyncio.Task[Transcript]) -> None:
            _running.discard(result)
            if on_done is not None:
                on_done(answer.transcript)

        result._task.add_done_callback(finished)
    else:
        _run_in_thread(lambda: view.stream(answer), result)
        view.replace_with_static()
        if on_done is not None:
            on_done(answer.transcript)
    return result


def stop_all() -> int:
    """Stop every answer still streaming; returns how many were stopped."""
    running = [result for result in list(_running) if not result.done]
    for result in running:
        result.stop()
    return len(running)


def run_mode(wait: bool | None) -> Mode:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return "terminal"  # terminal IPython or plain Python: no widgets, nobody to click
    if wait is None:
        wait = not has_interactive_frontend()
    if not wait:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return "blocking"  # no loop to run a background task on
    return "blocking" if wait else "background"


def has_interactive_frontend() -> bool:
    """A heuristic: kernels started by Jupyter's server, VS Code or Colab have someone watching.

    jupyter_server sets JPY_SESSION_NAME in the kernels it starts; nbclient,
    nbconvert and papermill do not. Use ``wait=`` (``--wait``) when it guesses wrong.
    """
    env = os.environ
    return bool(
        env.get("JPY_SESSION_NAME")
        or env.get("VSCODE_PID")
        or env.get("COLAB_RELEASE_TAG")
        or "google.colab" in sys.modules
    )


def _run_in_thread(
    make: Callable[[], Coroutine[Any, Any, T] | Awaitable[T]], result: ChatResult
) -> None:
    """Run a coroutine to its end on a private loop in a worker thread, and wait for it.

    The kernel's own loop is busy running this cell, so it cannot run the stream;
    a worker thread can. The context (the cell's parent message) goes with it, so
    what it displays lands in this cell. Ctrl-C or a kernel interrupt stops the
    stream cleanly and keeps the partial answer.
    """
    loop = asyncio.new_event_loop()
    task_ready = threading.Event()
    tasks: list[asyncio.Task[Any]] = []

    async def main() -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        task_ready.set()
        with contextlib.suppress(asyncio.CancelledError):  # stopped: the transcript says so
            await make()

    def stop() -> None:
        task_ready.wait()
        if not loop.is_closed():
            loop.call_soon_threadsafe(tasks[0].cancel)

    def run() -> None:
        try:
            loop.run_until_complete(main())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    result._stop_thread = stop
    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        stop()
        thread.join()
    finally:
        result._stop_thread = None


async def _print_stream(answer: Stream) -> None:
    reasoning = False
    try:
        async for event in answer:
            if isinstance(event, ReasoningDelta):
                if not reasoning:
                    sys.stdout.write("[reasoning] ")
                    reasoning = True
                sys.stdout.write(event.text)
            elif isinstance(event, TextDelta):
                if reasoning:
                    sys.stdout.write("\n\n")
                    reasoning = False
                sys.stdout.write(event.text)
            sys.stdout.flush()
    except StreamError:
        pass  # the transcript has it: shown below
    finally:
        transcript = answer.transcript
        if transcript.status in ("stopped", "error") or transcript.finish_reason in (
            "length",
            "max_tokens",
        ):
            note = f"\n[{status_line(transcript)}]"
            if transcript.error is not None:
                note += f"\n[error: {transcript.error}]"
            sys.stdout.write(note)
        sys.stdout.write("\n")
        sys.stdout.flush()
