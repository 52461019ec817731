"""Layer 6, views: sinks that show an answer and know nothing about HTTP or tasks.

A view receives a transcript (to read), its events in order and a stop function
(see :class:`Sink`); the runner drives it. :class:`AnswerView` is the notebook's
widget; :class:`TerminalSink` prints. A new view is a new class with ``begin``,
``feed`` and ``end``.
"""

from __future__ import annotations

from ._answer_view import AnswerView
from ._columns import ColumnsView
from ._outputs import hide_dead_live_css, hide_fallback_css, someone_watching
from ._progress import ProgressView
from ._sink import BatchSink, Sink
from ._terminal import TerminalBatch, TerminalSink

__all__ = [
    "AnswerView",
    "BatchSink",
    "ColumnsView",
    "ProgressView",
    "Sink",
    "TerminalBatch",
    "TerminalSink",
    "hide_dead_live_css",
    "hide_fallback_css",
    "someone_watching",
]
