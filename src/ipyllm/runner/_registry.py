"""What runs in this kernel: strong references (asyncio keeps only weak ones), and Stop all."""

from __future__ import annotations

from typing import Protocol


class Stoppable(Protocol):
    @property
    def done(self) -> bool: ...

    def stop(self) -> None: ...


_running: list[Stoppable] = []


def register(item: Stoppable) -> None:
    _running.append(item)


def unregister(item: Stoppable) -> None:
    if item in _running:
        _running.remove(item)


def running() -> list[Stoppable]:
    """Every answer or batch still running in this kernel, oldest first."""
    return [item for item in list(_running) if not item.done]


def stop_all() -> int:
    """Stop every answer and batch still running; returns how many were stopped."""
    items = running()
    for item in items:
        item.stop()
    return len(items)
