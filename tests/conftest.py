"""Shared test fixtures: the wire captures in ../shared/fixtures, the teaching server, widgets."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipyllm.server import TeachingServer

from .widgets import Frontend, recording

# The checkout sits next to shared/, on developers' machines and in CI alike.
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

# The dialect that reads each capture (the rest are OpenAI chat or Ollama native).
_DIALECT_OF = {
    "openai_completions_legacy.sse": "openai-completions",
    "openai_responses_basic.sse": "openai-responses",
    "openai_responses_error.sse": "openai-responses",
    "gemini_stream.sse": "gemini",
}


def dialect_of(fixture: str) -> str:
    if fixture in _DIALECT_OF:
        return _DIALECT_OF[fixture]
    if fixture.startswith("anthropic"):
        return "anthropic"
    if fixture.endswith(".ndjson"):
        return "ollama"
    if fixture.startswith("gemini"):
        return "gemini"
    return "openai"


def base_url_for(server_url: str, provider: str, options: str = "") -> str:
    """The base URL a client of ``provider`` is given, with teaching-server options."""
    root = f"{server_url}/with/{options}" if options else server_url
    suffix = {"anthropic": "", "ollama": "", "gemini": "/v1beta"}.get(provider, "/v1")
    return root + suffix


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    return json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture
async def server() -> AsyncIterator[TeachingServer]:
    """A teaching server on 127.0.0.1 with the fixtures, fast pacing unless a test asks."""
    async with TeachingServer(
        fixtures_dir=FIXTURES, token_rate=0, first_token_latency=0
    ) as running:
        yield running


@pytest.fixture
def frontend() -> Iterator[Frontend]:
    """Every widget message the test sends, and the models a frontend would hold from them."""
    with recording() as recorded:
        yield recorded


@pytest.fixture(autouse=True, scope="session")
def _private_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Turns logged by tests (also by the kernels they start) go to a temporary store."""
    os.environ["IPYLLM_STORE"] = str(tmp_path_factory.mktemp("store") / "store.sqlite3")


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real provider: keys and endpoints from the environment are removed."""
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_BASE_URL",
        "OLLAMA_HOST",
        "IPYLLM_PROVIDER",
        "IPYLLM_MODEL",
    ):
        monkeypatch.delenv(var, raising=False)
