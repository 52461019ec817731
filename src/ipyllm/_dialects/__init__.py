"""Provider dialects: each builds its requests and maps its stream to normalized events."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import Dialect, Message, Parser, RequestSpec
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


__all__ = ["DIALECTS", "Dialect", "Message", "Parser", "RequestSpec", "get_dialect"]
