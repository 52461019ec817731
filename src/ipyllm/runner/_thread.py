"""Running a coroutine to its end on a private loop in a worker thread, interruptibly."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ._registry import register, unregister


class Job(Protocol):
    """An answer or a batch, as it is driven: begun on its loop, run as a task, stoppable."""

    _task: asyncio.Task[Any] | None

    @property
    def done(self) -> bool: ...

    def stop(self) -> None: ...

    def _begin(self) -> None: ...


def drive_in_worker_thread(job: Job, pump: Callable[[], Awaitable[object]]) -> None:
    """Begin ``job`` and run ``pump()`` to its end in a worker thread (see
    :func:`in_worker_thread`), where Stop all reaches it meanwhile."""

    async def main() -> None:
        job._begin()
        job._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):  # stopped: the transcript says so
            await pump()

    register(job)
    try:
        in_worker_thread(main, job.stop)
    finally:
        unregister(job)


def in_worker_thread(main: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
    """Run ``main()`` on a new event loop in a worker thread and wait for it.

    Used where the kernel's own loop is busy running the cell (headless runs, ``wait``).
    The context (the cell's parent message) goes with the thread, so what it displays
    lands in this cell. Ctrl-C or a kernel interrupt calls ``stop`` (which must be safe
    from another thread) and waits for ``main`` to wind down.
    """
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def body() -> None:
        started.set()
        await main()

    def work() -> None:
        try:
            loop.run_until_complete(body())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        started.wait()
        stop()
        thread.join()
