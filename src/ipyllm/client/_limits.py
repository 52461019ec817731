"""What every stream to one endpoint shares in this process: a pause after a rate limit.

When a server answers 429 with ``retry-after``, every stream about to send to that
server waits too, not only the one that was told: maps, comparisons and single
cells of a kernel slow down together instead of each being refused in turn.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import httpx

MAX_PAUSE = 60.0  # seconds: the default retry budget; a longer retry-after is not waited out


class EndpointGate:
    """Requests to one endpoint wait here until a pause a server asked for has passed."""

    def __init__(self) -> None:
        self.resume_at = 0.0  # time.monotonic() before which nothing is sent

    def pause(self, seconds: float) -> None:
        """Hold every request to this endpoint for ``seconds``: at most a minute (a stream's
        retry budget), and not at all for a value that is no number of seconds (inf, nan)."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        self.resume_at = max(self.resume_at, time.monotonic() + min(seconds, MAX_PAUSE))

    async def wait(self) -> float:
        """Wait out the pause, if any; returns how long that was."""
        delay = self.resume_at - time.monotonic()
        if delay <= 0:
            return 0.0
        await asyncio.sleep(delay)
        return delay


_gates: dict[str, EndpointGate] = {}
_lock = threading.Lock()  # streams run on the kernel's loop and on worker threads' loops


def gate_for(url: str) -> EndpointGate:
    """The gate of the endpoint ``url`` belongs to (scheme, host and port)."""
    parsed = httpx.URL(url)
    key = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
    with _lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = EndpointGate()
        return gate
