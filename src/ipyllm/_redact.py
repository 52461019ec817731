"""Keeping secrets out of messages: the key itself and key-shaped strings servers echo back."""

from __future__ import annotations

import re

# Servers quote keys back in 401 messages, sometimes partly masked ("sk-abc***xyz").
_KEY_SHAPED = re.compile(r"\b(sk-(?:ant-|proj-)?|AIza)[A-Za-z0-9_\-*]{6,}")


def redact(text: str, secret: str | None = None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return _KEY_SHAPED.sub(lambda match: match.group(1) + "***", text)
