"""Conversations: named sessions of turns, the history each new turn sends (images
included), and ``{name}`` interpolation of notebook variables into prompts (nothing is
evaluated; DataFrames become bounded tables, figures and images are sent as images).
Used by the chat API and the magic; it reads transcripts and writes none.
"""

from __future__ import annotations

from ._interpolate import Filled, fill, interpolate
from ._session import (
    IMAGE_TOKENS,
    Session,
    Turn,
    context_window,
    estimate_tokens,
    history_messages,
    message_tokens,
    prompt_budget,
)
from ._values import as_prompt_text, markdown_table

__all__ = [
    "IMAGE_TOKENS",
    "Filled",
    "Session",
    "Turn",
    "as_prompt_text",
    "context_window",
    "estimate_tokens",
    "fill",
    "history_messages",
    "interpolate",
    "markdown_table",
    "message_tokens",
    "prompt_budget",
]
