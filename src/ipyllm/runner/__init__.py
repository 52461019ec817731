"""Layer 7, the runner: the one place that drives sources into sinks and owns Stop.

It decides how answers run (a background task on the kernel's loop where somebody
can click, a worker thread where nobody can, printing in a terminal), keeps strong
references to what runs (asyncio keeps only weak ones), and stops it from any
thread, before the first token, mid-stream or after the end. :class:`Run` drives
one answer; :class:`Batch` drives many (a comparison, a prompt over rows) with a
bound on how many are open at once and one Stop for all.
"""

from __future__ import annotations

from ._batch import Batch, run_batch_blocking, start_batch
from ._mode import Mode, has_interactive_frontend, run_mode
from ._registry import running, stop_all
from ._run import Run, drive, run_blocking, start

__all__ = [
    "Batch",
    "Mode",
    "Run",
    "drive",
    "has_interactive_frontend",
    "run_batch_blocking",
    "run_blocking",
    "run_mode",
    "running",
    "start",
    "start_batch",
    "stop_all",
]
