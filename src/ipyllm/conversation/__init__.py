"""Conversations: named sessions of turns, the history each new turn sends, and
``{name}`` interpolation of notebook variables into prompts (nothing is evaluated).
Used by the chat API and the magic; it reads transcripts and writes none.
"""

from __future__ import annotations

from ._interpolate import interpolate
from ._session import (
    Session,
    Turn,
    context_window,
    estimate_tokens,
    history_messages,
    prompt_budget,
)

__all__ = [
    "Session",
    "Turn",
    "context_window",
    "estimate_tokens",
    "history_messages",
    "interpolate",
    "prompt_budget",
]
