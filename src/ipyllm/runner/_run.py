"""One answer: a source driven into a sink, in a background task or a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from ..client import Source
from ..errors import StreamError
from ..transcript import Transcript
from ..views import Sink
from ._registry import register, unregister
from ._thread import drive_in_worker_thread


class Run:
    """One source driven into one sink: ``await`` it for the transcript, ``stop()`` it."""

    def __init__(self, source: Source, sink: Sink) -> None:
        self.source = source
        self.sink = sink
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Transcript] | None = None
        self._stop_requested = False
        self._ended = False

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
    register(run)
    run._task.add_done_callback(lambda task: _finished(run, task))
    return run


def _finished(run: Run, task: asyncio.Task[Transcript]) -> None:
    unregister(run)
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
    worker thread can (see :func:`in_worker_thread`). Ctrl-C or a kernel interrupt
    stops the answer cleanly and keeps the partial text.
    """
    run = Run(source, sink)
    drive_in_worker_thread(run, run._pump)
    return run
