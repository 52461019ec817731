"""A bound on widget messages: at most ``rate`` in any one second, per view."""

from __future__ import annotations

from collections import deque


class MessageBudget:
    """Counts the messages a view sent in the last second and says when more may go.

    Jupyter's server drops iopub messages above 1,000 a second and the page lags well
    before that; every answer streaming at once shares that, so each view spends at
    most ``rate`` a second whatever its token rate.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._sent: deque[float] = deque()

    def wait(self, count: int, now: float) -> float:
        """Seconds to wait before ``count`` more messages fit in the window (0: now)."""
        sent = self._sent
        while sent and sent[0] <= now - 1.0:
            sent.popleft()
        over = len(sent) + count - self.rate
        if over <= 0:
            return 0.0
        if over > len(sent):  # a frame bigger than the whole budget: one full second
            return 1.0
        return sent[over - 1] + 1.0 - now

    def spend(self, count: int, now: float) -> None:
        self._sent.extend([now] * count)
