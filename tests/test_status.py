"""The status line says who answered and what it cost, in words nobody has to correct."""

from __future__ import annotations

import pytest

import ipyllm
from ipyllm.render import status_line
from ipyllm.server import TeachingServer
from ipyllm.transcript import Transcript, Usage

from .conftest import base_url_for


async def test_the_demo_is_named_once_and_costs_nothing() -> None:
    transcript = await ipyllm.achat("Hi", provider="demo")
    line = status_line(transcript)
    assert line.startswith("demo · done") and "demo · demo" not in line
    assert transcript.cost == 0.0 and line.endswith("free")
    reasoning = await ipyllm.achat("Hi", provider="demo", model="demo-reasoning")
    assert status_line(reasoning).startswith("demo · demo-reasoning · done")


@pytest.mark.parametrize(
    "provider", ["openai", "anthropic", "gemini", "ollama", "openai-responses"]
)
async def test_a_server_at_a_base_url_is_named_with_the_model_it_reports(
    server: TeachingServer, provider: str
) -> None:
    transcript = await ipyllm.achat(
        "Hi",
        provider=provider,
        base_url=base_url_for(server.url, provider),
        api_key="sk-test-status",
        model="asked-for",
    )
    host = server.url.removeprefix("http://")
    assert transcript.endpoint == host
    assert transcript.served_model == "asked-for"  # the teaching server echoes the model
    assert status_line(transcript).startswith(f"{host} · asked-for · done")
    assert "openai ·" not in status_line(transcript)
    assert transcript.cost == 0.0  # a server on this machine


def test_no_model_named_and_nothing_reported_says_so() -> None:
    transcript = Transcript(provider="openai", model="gpt-4o-mini")
    transcript.model_named = False
    transcript.endpoint = "127.0.0.1:8080"
    assert status_line(transcript).startswith("127.0.0.1:8080 · no model named")
    transcript.served_model = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
    assert status_line(transcript).startswith("127.0.0.1:8080 · qwen2.5-0.5b-instruct")


def test_a_known_price_an_unknown_one_and_usage_counted() -> None:
    priced = Transcript(provider="openai", model="gpt-4o-mini")
    priced.start()
    priced.usage = Usage(input_tokens=1000, output_tokens=500)
    priced.cost = 0.0012
    priced.end("done")
    assert status_line(priced).endswith("tokens: 1000 in, 500 out · $0.0012")
    unknown = Transcript(provider="openai", model="my-finetune")
    unknown.start()
    unknown.usage = Usage(input_tokens=10, output_tokens=5)
    unknown.end("done")
    assert status_line(unknown).endswith("cost unknown")


async def test_a_local_answer_that_failed_says_failed_not_free(server: TeachingServer) -> None:
    with pytest.raises(ipyllm.HTTPStatusError) as caught:
        await ipyllm.achat(
            "Hi", provider="openai", base_url=f"{server.url}/with/status=500/v1", max_retries=0
        )
    failed = caught.value.transcript
    assert failed is not None and failed.status == "error" and failed.cost == 0.0
    line = status_line(failed)
    assert "failed" in line and "free" not in line, line
