"""Layer 7, the runner: the one place that drives a source into a sink and owns Stop.

It decides how an answer runs (a background task on the kernel's loop where
somebody can click, a worker thread where nobody can, printing in a terminal),
keeps strong references to what runs (asyncio keeps only weak ones), and stops
it from any thread, before the first token, mid-stream or after the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Generator
from typing import Any, Literal

from .client import Source
from .errors import StreamError
from .transcript import Transcript
from .views import Sink

Mode = Literal["background", "blocking", "terminal"]

_running: set[Run] = set()  # strong references: asyncio keeps only weak ones


class Run:
    """One source driven into one sink: ``await`` it for the transcript, ``stop()`` it."""

    def __init__(self, source: Source, sink: Sink) -> None:
        self.source = source
        self.sink = sink
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Transcript] | None = None
        self._stop_requested = False
        self._ended = False
        self._started = threading.Event()

    @property
    def transcript(self) -> Transcript:
        return self.source.transcript

    @property
    def done(self) -> bool:
        return self.transcript.finished and self._ended

    def stop(self) -> None:
        """Cancel the answer and close its connection; safe from any thread, at any moment."""
        self._stop_requested = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done() and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    def __await__(self) -> Generator[Any, None, Transcript]:
        return self._wait().__await__()

    async def _wait(self) -> Transcript:
        if self._task is not None:
            await asyncio.shield(self._task)
        return self.transcript

    def __repr__(self) -> str:
        transcript = self.transcript
        return f"<Run {transcript.provider}/{transcript.model} {transcript.status}>"

    # -- driving ----------------------------------------------------------------------
    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sink.begin(self.transcript, self.stop)

    async def _pump(self) -> Transcript:
        try:
            async for event in self.source:
                self.sink.feed(event)
        except asyncio.CancelledError:
            if not self._stop_requested:  # our caller was cancelled, not Stop: pass it on
                self._end()
                raise
        except StreamError:
            pass  # the transcript keeps the error; the sink shows it
        finally:
            await self.source.aclose()  # a source stopped before its first step ends here too
        self._end()
        return self.transcript

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.sink.end(self.transcript)


def start(source: Source, sink: Sink) -> Run:
    """Drive ``source`` into ``sink`` in a background task on the running loop; return at once."""
    run = Run(source, sink)
    run._begin()
    assert run._loop is not None
    run._task = run._loop.create_task(run._pump())
    _running.add(run)
    run._task.add_done_callback(lambda task: _finished(run, task))
    return run


def _finished(run: Run, task: asyncio.Task[Transcript]) -> None:
    _running.discard(run)
    if task.cancelled() and not run._ended:
        # Cancelled before its first step: the pump never ran, so close and end here.
        assert run._loop is not None
        run._loop.create_task(_close_unstarted(run))


async def _close_unstarted(run: Run) -> None:
    await run.source.aclose()
    run._end()


async def drive(source: Source, sink: Sink) -> Transcript:
    """Drive ``source`` into ``sink`` in the current task; cancelling it stops the answer."""
    run = start(source, sink)
    assert run._task is not None
    try:
        return await asyncio.shield(run._task)
    except asyncio.CancelledError:
        run._task.cancel()  # our caller was cancelled (not Stop): stop the answer with it
        raise


def run_blocking(source: Source, sink: Sink) -> Run:
    """Drive ``source`` into ``sink`` to the end on a private loop in a worker thread.

    The kernel's own loop is busy running this cell, so it cannot run the stream; a
    worker thread can. The context (the cell's parent message) goes with it, so what
    it displays lands in this cell. Ctrl-C or a kernel interrupt stops the answer
    cleanly and keeps the partial text.
    """
    run = Run(source, sink)
    loop = asyncio.new_event_loop()

    async def main() -> None:
        run._begin()
        run._task = asyncio.current_task()
        run._started.set()
        with contextlib.suppress(asyncio.CancelledError):  # stopped: the transcript says so
            await run._pump()

    def work() -> None:
        try:
            loop.run_until_complete(main())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            run._started.set()
            loop.close()

    _running.add(run)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        run._started.wait()
        run.stop()
        thread.join()
    finally:
        _running.discard(run)
    return run


def running() -> list[Run]:
    """Every answer still running in this kernel, oldest first."""
    runs = [run for run in list(_running) if not run.done]
    return sorted(runs, key=lambda run: run.transcript.started_at or 0.0)


def stop_all() -> int:
    """Stop every answer still running; returns how many were stopped."""
    runs = running()
    for run in runs:
        run.stop()
    return len(runs)


def run_mode(wait: bool | None) -> Mode:
    """How an answer runs here: in the background, blocking in a thread, or printed."""
    from IPython.core.getipython import get_ipython

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


__all__ = [
    "Mode",
    "Run",
    "drive",
    "has_interactive_frontend",
    "run_blocking",
    "run_mode",
    "running",
    "start",
    "stop_all",
]
