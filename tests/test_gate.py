"""The pause a 429's retry-after puts on every stream to its endpoint is bounded."""

from __future__ import annotations

import time

from ipyllm.client._limits import MAX_PAUSE, EndpointGate


def test_a_pause_is_bounded_and_only_ever_a_number_of_seconds() -> None:
    gate = EndpointGate()
    for nonsense in (float("inf"), float("nan"), -5.0, 0.0):
        gate.pause(nonsense)
        assert gate.resume_at == 0.0, nonsense  # nothing waits on it
    gate.pause(1e9)  # a retry-after of thirty years holds streams a minute at most
    assert gate.resume_at - time.monotonic() <= MAX_PAUSE
    gate.pause(0.5)  # a shorter pause never shortens a longer one
    assert gate.resume_at - time.monotonic() > MAX_PAUSE - 1
