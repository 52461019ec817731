"""Layer 2, provider dialects: each builds its requests and maps its wire events to deltas.

A dialect knows one provider's request body, URL, headers and stream format, and
nothing about sockets: a :class:`Parser` turns decoded wire events (SSE events or
NDJSON lines) into the normalized events of :mod:`ipyllm.events`. A new provider
is a new module here, registered in ``DIALECTS``.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ._base import Dialect, Message, Parser, RequestSpec, WireEvent
from .anthropic import Anthropic
from .demo import Demo
from .gemini import Gemini
from .ollama import Ollama
from .openai import OpenAIChat, OpenAICompletions, OpenAIResponses

DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        OpenAIChat(),
        OpenAICompletions(),
        OpenAIResponses(),
        Anthropic(),
        Ollama(),
        Gemini(),
        Demo(),
    )
}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigurationError(f"unknown provider {name!r}; choose one of: {known}") from None


__all__ = [
    "DIALECTS",
    "Dialect",
    "Message",
    "Parser",
    "RequestSpec",
    "WireEvent",
    "get_dialect",
]
