"""What an answer cost, from its usage: your own prices, else genai-prices' offline list.

Demo answers and models served from this machine cost nothing; a model whose price
nobody knows says so ("cost unknown") rather than guessing. Prices you give are in
US dollars per million tokens: ``{"my-model": {"input": 0.5, "output": 1.5}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .transcript import Usage

# ipyllm's provider names as genai-prices names them.
_PROVIDER_IDS = {
    "openai": "openai",
    "openai-completions": "openai",
    "openai-responses": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
}
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_DEFAULT_HOSTS = ("api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com")


def answer_cost(
    provider: str,
    model: str,
    usage: Usage | None,
    *,
    base_url: str | None = None,
    prices: Mapping[str, Any] | None = None,
) -> float | None:
    """The answer's price in US dollars, ``0.0`` when free, ``None`` when unknown."""
    if provider == "demo" or _is_local(base_url) or (provider == "ollama" and base_url is None):
        return 0.0
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return None
    given = (prices or {}).get(model)
    if given is not None:
        return _priced(given, usage)
    return _listed(provider, model, usage, base_url)


def _is_local(base_url: str | None) -> bool:
    if not base_url:
        return False
    host = urlsplit(base_url).hostname or ""
    return host in _LOCAL_HOSTS or host.endswith(".localhost") or host.endswith(".invalid")


def _priced(given: Any, usage: Usage) -> float | None:
    try:
        per_input = float(given.get("input", 0.0))
        per_output = float(given.get("output", 0.0))
    except (AttributeError, TypeError, ValueError):
        return None  # a malformed price says "unknown", never a wrong number
    tokens_in, tokens_out = usage.input_tokens or 0, usage.output_tokens or 0
    return (tokens_in * per_input + tokens_out * per_output) / 1_000_000


def _listed(provider: str, model: str, usage: Usage, base_url: str | None) -> float | None:
    try:  # loaded on first use: a price list is not needed to stream
        from genai_prices import Usage as PriceUsage
        from genai_prices import calc_price
    except ImportError:
        return None
    host = urlsplit(base_url).hostname if base_url else None
    counted = PriceUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    try:
        if (host is None or host in _DEFAULT_HOSTS) and provider in _PROVIDER_IDS:
            price = calc_price(counted, model, provider_id=_PROVIDER_IDS[provider])
        elif base_url:  # a gateway (OpenRouter...) is priced by its address
            price = calc_price(counted, model, provider_api_url=base_url)
        else:
            return None
    except (LookupError, ValueError):
        return None
    return float(price.total_price)


def format_cost(cost: float | None) -> str:
    """``$0.0012``, ``free``, or ``cost unknown``."""
    if cost is None:
        return "cost unknown"
    if cost == 0:
        return "free"
    return f"${cost:.4f}" if cost >= 0.0001 else f"${cost:.6f}"


__all__ = ["answer_cost", "format_cost"]
