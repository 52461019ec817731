"""Small text helpers shared by every layer."""

from __future__ import annotations


def snippet(text: str, limit: int = 80) -> str:
    """A short, quoted excerpt of ``text`` for an error message."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return repr(text)
