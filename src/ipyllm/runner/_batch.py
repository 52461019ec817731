"""Many answers at once: each row a source driven into its own sink, ``concurrency`` at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from typing import Any

from ..client import Source, shared_connections
from ..transcript import Transcript
from ..views import BatchSink
from ._registry import register, unregister
from ._run import Run
from ._thread import drive_in_worker_thread

SourceFactory = Callable[[int], Source]


class Batch:
    """Rows run with at most ``concurrency`` open at once; ``stop()`` ends running and queued
    rows at once (finished rows are kept); ``await`` it for the transcripts in row order.

    Sources are made when their row starts, so a row queued behind others costs nothing
    until then, and a stop before it starts leaves it ``stopped`` with no request sent.
    """

    def __init__(
        self, count: int, make_source: SourceFactory, sink: BatchSink, concurrency: int
    ) -> None:
        self.count = count
        self.runs: list[Run | None] = [None] * count
        self.sink = sink
        self.concurrency = max(1, concurrency)
        self._make_source = make_source
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[list[Transcript]] | None = None
        self._ended = False

    @property
    def transcripts(self) -> list[Transcript | None]:
        """Each row's transcript, ``None`` for a row that has not started yet."""
        return [None if run is None else run.transcript for run in self.runs]

    @property
    def done(self) -> bool:
        return self._ended

    def stop(self) -> None:
        """Stop every running row and every queued one; safe from any thread."""
        self._stop_requested = True
        for run in self.runs:
            if run is not None:
                run.stop()

    def __await__(self) -> Generator[Any, None, list[Transcript]]:
        return self._wait().__await__()

    async def _wait(self) -> list[Transcript]:
        if self._task is not None:
            await asyncio.shield(self._task)
        return [run.transcript for run in self.runs if run is not None]

    # -- driving ----------------------------------------------------------------------
    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sink.begin(self.count, self.stop)

    async def _main(self) -> list[Transcript]:
        gate = asyncio.Semaphore(self.concurrency)
        try:
            async with shared_connections():  # rows reuse connections; closed at the end
                await asyncio.gather(*(self._row(index, gate) for index in range(self.count)))
        except asyncio.CancelledError:  # our caller was cancelled, not Stop: stop the rows
            self.stop()
            raise
        finally:
            self._end()
        return [run.transcript for run in self.runs if run is not None]

    async def _row(self, index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            run = Run(self._make_source(index), self.sink.row(index))
            self.runs[index] = run
            run._begin()
            run._task = asyncio.current_task()  # a row's own Stop cancels this task only
            if self._stop_requested:
                run._stop_requested = True
                await run.source.aclose()  # never sent: ends "stopped"
                run._end()
                return
            with contextlib.suppress(asyncio.CancelledError):
                await run._pump()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.sink.end([run.transcript for run in self.runs if run is not None])


def start_batch(count: int, make_source: SourceFactory, sink: BatchSink, concurrency: int) -> Batch:
    """Run the rows in a background task on the running loop; return at once."""
    batch = Batch(count, make_source, sink, concurrency)
    batch._begin()
    assert batch._loop is not None
    batch._task = batch._loop.create_task(batch._main())
    register(batch)
    batch._task.add_done_callback(lambda _task: unregister(batch))
    return batch


def run_batch_blocking(
    count: int, make_source: SourceFactory, sink: BatchSink, concurrency: int
) -> Batch:
    """Run the rows to the end on a private loop in a worker thread (headless runs)."""
    batch = Batch(count, make_source, sink, concurrency)
    drive_in_worker_thread(batch, batch._main)
    return batch
