"""Running a coroutine to its end on a private loop in a worker thread, interruptibly."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable


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
