"""Layer 2, provider dialects: each builds its requests and maps its wire events to deltas.

A dialect knows one provider's request body, URL, headers and stream format, and
nothing about sockets: a :class:`Parser` turns decoded wire events (SSE events or
NDJSON lines) into the normalized events of :mod:`ipyllm.events`. A new provider
is a new module here, registered in ``DIALECTS``. Messages come in one neutral form
(``_content``: images as ``image_url`` parts) and a structured answer's schema as a
:class:`Schema` (``_schema``); each dialect writes both as its API documents.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ._base import Dialect, Message, Parser, RequestSpec, WireEvent
from ._content import has_images, image_of
from ._schema import Schema, as_schema, resolve_ref
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
    "Schema",
    "WireEvent",
    "as_schema",
    "get_dialect",
    "has_images",
    "image_of",
    "resolve_ref",
]
