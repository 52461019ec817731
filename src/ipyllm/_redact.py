"""Keeping secrets out of messages: the key itself and key-shaped strings servers echo back."""

from __future__ import annotations

import re

# Servers quote keys back in 401 messages, sometimes partly masked ("sk-abc***xyz").
_KEY_SHAPED = re.compile(r"\b(sk-(?:ant-|proj-)?|AIza)[\w\-*]{6,}")
_MASK = "***"


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret`` and anything shaped like an API key replaced by ``***``."""
    if secret:
        text = text.replace(secret, _MASK)
    return _KEY_SHAPED.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    if match.group(0).endswith("-" + _MASK):
        return match.group(0)  # already masked ("sk-proj-***"): redact stays idempotent
    return match.group(1) + _MASK
