"""Which provider, model, endpoint and key a request uses, by each ecosystem's conventions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from ..dialects import DIALECTS, Dialect, get_dialect
from ..errors import ConfigurationError

# With no provider named, the first of these whose key is set picks the provider.
_DETECTION_ORDER = ("openai", "anthropic", "gemini")
_EXTRA_KEY_VARS = {"gemini": ("GOOGLE_API_KEY",)}


@dataclass(frozen=True)
class Target:
    """A resolved endpoint. The key is kept out of ``repr`` so it never lands in output."""

    dialect: Dialect
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    model_named: bool = True
    """Whether somebody chose the model (False: the provider's default was filled in)."""

    @property
    def provider(self) -> str:
        return self.dialect.name

    @property
    def endpoint(self) -> str | None:
        """``host:port`` when the request goes elsewhere than the provider's own service
        (a local server, a proxy, the teaching server); None for the usual one."""
        return _endpoint(self.base_url, self.dialect.default_base_url)


@lru_cache(maxsize=64)
def _endpoint(base_url: str, usual_base_url: str) -> str | None:
    # Parsed once per URL, not per row of a map (URL parsing was 5% of a row's CPU).
    url, usual = httpx.URL(base_url), httpx.URL(usual_base_url)
    if (url.host, url.port) == (usual.host, usual.port):
        return None
    return f"{url.host}:{url.port}" if url.port else url.host


def resolve(
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    require_key: bool = True,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Fill in what the caller left out: arguments, then environment variables, then defaults."""
    env = os.environ if env is None else env
    explicit = provider is not None
    name = provider or env.get("IPYLLM_PROVIDER") or _detect(base_url, api_key, env)
    dialect = get_dialect(name)
    if not explicit:
        model = model or env.get("IPYLLM_MODEL")
    url = base_url or (env.get(dialect.base_url_env) if dialect.base_url_env else None)
    url = _normalize_ollama_host(url) if url and dialect.name == "ollama" else url
    url = url or dialect.default_base_url
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, not {url!r}")
    key = api_key or _key_from_env(dialect, env)
    if require_key and not key and dialect.api_key_env and url == dialect.default_base_url:
        raise ConfigurationError(
            f"no API key for {dialect.name}: set the {dialect.api_key_env} environment "
            "variable (or pass api_key=...)"
        )
    return Target(dialect, model or dialect.default_model, url, key, model_named=bool(model))


def _detect(base_url: str | None, api_key: str | None, env: Mapping[str, str]) -> str:
    if base_url or api_key:
        return "openai"  # an OpenAI-compatible server is the common case for a bare URL
    for name in _DETECTION_ORDER:
        if _key_from_env(DIALECTS[name], env):
            return name
    return "demo"


def _key_from_env(dialect: Dialect, env: Mapping[str, str]) -> str | None:
    names = ((dialect.api_key_env,) if dialect.api_key_env else ()) + _EXTRA_KEY_VARS.get(
        dialect.name, ()
    )
    for var in names:
        if env.get(var):
            return env[var]
    return None


def _normalize_ollama_host(host: str) -> str:
    # OLLAMA_HOST is often a bind address such as "0.0.0.0:11434" or "localhost".
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    hostname = parts.hostname or "127.0.0.1"
    if hostname in ("0.0.0.0", "::"):
        hostname = "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = parts.port or 11434
    return f"{parts.scheme}://{hostname}:{port}{parts.path.rstrip('/')}"
