"""The public async API against the teaching server: faults, retries, cancellation, config."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

import ipyllm
from ipyllm import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ProtocolError,
    ProviderError,
    StalledError,
    TruncatedError,
)
from ipyllm.client import resolve
from ipyllm.events import Finish, RawEvent, TextDelta, UsageUpdate
from ipyllm.server import TeachingServer, demo_answer

from .conftest import base_url_for

PROVIDERS = ["openai", "openai-completions", "openai-responses", "anthropic", "ollama", "gemini"]
QUESTION = "Why is the sky blue?"


def demo_text(prompt: str = QUESTION) -> str:
    return demo_answer([{"role": "user", "content": prompt}])


async def run(answer: ipyllm.Stream) -> ipyllm.StreamError | None:
    try:
        async for _ in answer:
            pass
    except ipyllm.StreamError as error:
        return error
    return None


def open_stream(
    server: TeachingServer, provider: str, options: str = "", **kw: Any
) -> ipyllm.Stream:
    return ipyllm.stream(
        QUESTION,
        provider=provider,
        base_url=base_url_for(server.url, provider, options),
        api_key="sk-test-canary-0123456789",
        **kw,
    )


# -- the demo model served over every dialect ---------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_dialect_streams_the_demo_answer(server: TeachingServer, provider: str) -> None:
    answer = open_stream(server, provider)
    events = [event async for event in answer]
    transcript = answer.transcript
    assert transcript.status == "done"
    assert transcript.text == demo_text()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == transcript.text
    assert sum(isinstance(e, TextDelta) for e in events) > 20  # token by token, not in one piece
    assert isinstance(next(e for e in events if isinstance(e, Finish)), Finish)
    if provider != "openai-completions":
        assert any(isinstance(e, UsageUpdate) for e in events)
        assert transcript.usage is not None and transcript.usage.output_tokens


async def test_default_provider_is_the_offline_demo() -> None:
    transcript = await ipyllm.achat(QUESTION)
    assert (transcript.provider, transcript.model) == ("demo", "demo")
    assert transcript.text == demo_text()
    assert transcript.status == "done"
    assert transcript.time_to_first_token is not None and transcript.time_to_first_token > 0
    assert transcript.tokens_per_second and transcript.tokens_per_second > 0


async def test_demo_reasoning_model_streams_reasoning_apart() -> None:
    transcript = await ipyllm.achat(
        QUESTION,
        provider="demo",
        model="demo-reasoning",
        base_url="http://demo.ipyllm.invalid/with/rate=0,latency=0/v1",
    )
    assert transcript.reasoning and transcript.text == demo_text()


async def test_raw_events_come_before_what_they_produce(server: TeachingServer) -> None:
    answer = open_stream(server, "openai", raw=True)
    events = [event async for event in answer]
    raws = [e for e in events if isinstance(e, RawEvent)]
    assert raws[-1].data == "[DONE]"
    assert events.index(raws[0]) < events.index(next(e for e in events if isinstance(e, TextDelta)))
    assert all(b.time >= a.time for a, b in itertools.pairwise(raws))


async def test_conversation_turns_reach_the_server(server: TeachingServer) -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": QUESTION},
    ]
    for provider in PROVIDERS:
        transcript = await ipyllm.achat(
            messages,
            provider=provider,
            base_url=base_url_for(server.url, provider),
            api_key="k",
            system="Be brief.",
        )
        if provider != "openai-completions":
            assert transcript.text == demo_answer(messages), provider


# -- faults --------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried_then_succeeds(server: TeachingServer) -> None:
    started = time.monotonic()
    answer = open_stream(server, "openai", "status=429,retry_after=0.3,times=1")
    assert await run(answer) is None
    assert answer.transcript.text == demo_text()
    assert answer.transcript.retries == 1
    assert time.monotonic() - started >= 0.3  # the server's retry-after was honoured


async def test_503_is_retried_with_backoff_and_gives_up_with_the_servers_words(
    server: TeachingServer,
) -> None:
    answer = open_stream(server, "anthropic", "status=503", max_retries=2)
    error = await run(answer)
    assert isinstance(error, ipyllm.HTTPStatusError) and error.status_code == 503
    assert answer.transcript.retries == 2
    assert len([r for r in server.app.log if r["event"] == "request"]) == 3
    assert error.server_message and error.server_message in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_whole_answer_asked_for_with_stream_false_is_read_whole(
    server: TeachingServer, provider: str
) -> None:
    """params={"stream": False}: each API's own non-streamed request (Gemini's other
    method; OpenAI's without stream_options, which it refuses there), read whole."""
    server.app.keep_bodies = True
    transcript = await ipyllm.achat(
        QUESTION,
        provider=provider,
        base_url=base_url_for(server.url, provider),
        api_key="sk-test",
        params={"stream": False},
    )
    assert transcript.status == "done" and transcript.text == demo_text()
    assert transcript.usage is not None and transcript.finish_reason
    assert transcript.first_token_at is not None  # all of it came at once
    (sent,) = server.app.bodies
    if provider == "gemini":
        assert sent["path"].endswith(":generateContent") and "stream" not in sent["body"]
    else:
        assert sent["body"]["stream"] is False and "stream_options" not in sent["body"]


async def test_retry_settings_changed_before_the_start_apply(server: TeachingServer) -> None:
    answer = open_stream(server, "openai", "status=503", max_retries=2)
    answer.max_retries = 0
    error = await run(answer)
    assert isinstance(error, ipyllm.HTTPStatusError) and answer.transcript.retries == 0
    assert len([r for r in server.app.log if r["event"] == "request"]) == 1
    stalling = open_stream(server, "openai", "stall_after=5,stall=30")
    stalling.stall_timeout = 0.3
    error = await run(stalling)
    assert isinstance(error, StalledError) and "for 0.3 s" in str(error), error


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_401_fails_at_once_naming_the_variable(server: TeachingServer, provider: str) -> None:
    answer = open_stream(server, provider, "status=401")
    error = await run(answer)
    assert isinstance(error, AuthenticationError)
    assert len([r for r in server.app.log if r["event"] == "request"]) == 1
    variable = ipyllm.dialects.get_dialect(provider).api_key_env
    if variable:
        assert variable in str(error)
    assert "sk-test-canary" not in str(error) and "sk-test-canary" not in repr(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_drop_mid_stream_keeps_the_text_received(
    server: TeachingServer, provider: str
) -> None:
    answer = open_stream(server, provider, "drop_after=12")
    error = await run(answer)
    assert isinstance(error, TruncatedError)
    text = answer.transcript.text
    assert text and demo_text().startswith(text) and len(text) < len(demo_text())
    assert answer.transcript.status == "error"
    assert f"after {len(text)} characters" in str(error)


async def test_drop_after_bytes_mid_event_is_truncation(server: TeachingServer) -> None:
    answer = open_stream(server, "openai", "drop_after_bytes=1500")
    error = await run(answer)
    assert isinstance(error, TruncatedError)
    assert demo_text().startswith(answer.transcript.text)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stall_gives_a_stalled_error_with_the_text_kept(
    server: TeachingServer, provider: str
) -> None:
    answer = open_stream(server, provider, "stall_after=5,stall=30", stall_timeout=0.4)
    started = time.monotonic()
    error = await run(answer)
    assert isinstance(error, StalledError)
    assert time.monotonic() - started < 5
    assert answer.transcript.text and demo_text().startswith(answer.transcript.text)
    assert "stalled" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_malformed_json_gives_a_protocol_error_with_the_text_kept(
    server: TeachingServer, provider: str
) -> None:
    answer = open_stream(server, provider, "malformed_after=7")
    error = await run(answer)
    assert isinstance(error, ProtocolError)
    assert "malformed JSON" in str(error)
    assert answer.transcript.text and demo_text().startswith(answer.transcript.text)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_error_event_mid_stream_is_a_provider_error(
    server: TeachingServer, provider: str
) -> None:
    answer = open_stream(server, provider, "error_after=9")
    error = await run(answer)
    assert isinstance(error, ProviderError)
    assert "mid-stream" in str(error)
    assert answer.transcript.text and demo_text().startswith(answer.transcript.text)


@pytest.mark.parametrize("options", ["html=1", "status=502,body=html"])
async def test_an_html_page_is_quoted_briefly(server: TeachingServer, options: str) -> None:
    error = await run(open_stream(server, "openai", options, max_retries=0))
    assert isinstance(error, ProtocolError | ipyllm.HTTPStatusError)
    assert "HTML page" in str(error)
    assert len(str(error)) < 400


async def test_an_empty_body_is_a_protocol_error(server: TeachingServer) -> None:
    error = await run(open_stream(server, "openai", "empty=1"))
    assert isinstance(error, ProtocolError) and "empty body" in str(error)


async def test_unreachable_server_is_a_connect_error() -> None:
    error = await run(
        ipyllm.stream("x", base_url="http://127.0.0.1:9/v1", max_retries=1, api_key="k")
    )
    assert isinstance(error, ConnectError)
    assert "127.0.0.1:9" in str(error)


# -- cancellation ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cancelling_mid_stream_closes_the_connection_at_once(provider: str) -> None:
    async with TeachingServer(token_rate=20, first_token_latency=0) as server:
        answer = open_stream(server, provider)
        received: list[str] = []

        async def consume() -> None:
            async for event in answer:
                if isinstance(event, TextDelta):
                    received.append(event.text)

        task = asyncio.create_task(consume())
        while len(received) < 5:
            await asyncio.sleep(0.01)
        cancelled_at = time.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        record = await asyncio.to_thread(
            server.app.wait_for, lambda r: r["event"] == "disconnect", 2.0
        )
        assert record is not None, server.app.log
        assert record["time"] - cancelled_at < 0.25
        transcript = answer.transcript
        assert transcript.status == "stopped"
        assert transcript.text == "".join(received)  # exactly what the consumer saw
        assert transcript.error is None


async def test_cancelling_before_the_first_token_stops_cleanly() -> None:
    async with TeachingServer(token_rate=20, first_token_latency=30) as server:
        answer = open_stream(server, "openai")
        task = asyncio.create_task(run(answer))
        await asyncio.to_thread(server.app.wait_for, lambda r: r["event"] == "request", 2.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(
            server.app.wait_for, lambda r: r["event"] == "disconnect", 2.0
        )
        assert answer.transcript.status == "stopped" and answer.transcript.text == ""


async def test_aclose_stops_and_keeps_the_partial_text(server: TeachingServer) -> None:
    answer = open_stream(server, "openai")
    async for event in answer:
        if isinstance(event, TextDelta) and len(answer.transcript.text) > 30:
            break
    await answer.aclose()
    assert answer.transcript.status == "stopped"
    assert demo_text().startswith(answer.transcript.text)


# -- configuration ---------------------------------------------------------------------


def test_resolution_follows_each_ecosystems_conventions() -> None:
    assert resolve(env={}).provider == "demo"
    assert resolve(env={"OPENAI_API_KEY": "k"}).provider == "openai"
    assert resolve(env={"ANTHROPIC_API_KEY": "k"}).provider == "anthropic"
    assert resolve(env={"GEMINI_API_KEY": "k"}).provider == "gemini"
    assert resolve(env={"GOOGLE_API_KEY": "k"}).api_key == "k"
    local = resolve(base_url="http://127.0.0.1:8080/v1", env={})
    assert (local.provider, local.api_key) == ("openai", None)  # llama.cpp, vLLM: no key needed
    custom = resolve(env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://x:1/v1"})
    assert custom.base_url == "http://x:1/v1"
    assert resolve("ollama", env={"OLLAMA_HOST": "0.0.0.0"}).base_url == "http://127.0.0.1:11434"
    assert resolve("ollama", env={"OLLAMA_HOST": "gpu:9"}).base_url == "http://gpu:9"
    chosen = resolve(env={"IPYLLM_PROVIDER": "demo", "IPYLLM_MODEL": "demo-reasoning"})
    assert (chosen.provider, chosen.model) == ("demo", "demo-reasoning")


def test_configuration_errors_are_one_clear_line() -> None:
    with pytest.raises(ConfigurationError, match="set the ANTHROPIC_API_KEY environment"):
        ipyllm.stream("x", provider="anthropic")
    with pytest.raises(ConfigurationError, match="unknown provider 'opnai'; choose one of"):
        ipyllm.stream("x", provider="opnai")
    with pytest.raises(ConfigurationError, match="must start with http"):
        ipyllm.stream("x", base_url="localhost:8080")


def test_the_key_never_shows_in_reprs() -> None:
    target = resolve("openai", api_key="sk-canary-abcdef123456", env={})
    answer = ipyllm.stream("x", provider="openai", api_key="sk-canary-abcdef123456")
    for text in (
        repr(target),
        repr(answer),
        repr(answer.transcript),
        str(answer.transcript.to_dict()),
    ):
        assert "canary" not in text


async def test_an_error_event_quoting_the_key_is_redacted_everywhere() -> None:
    key = "sk-canary-echo-0123456789"
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"error":{"message":"bad key ' + key.encode() + b'","type":"auth"}}\n\n'
    )
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=body
        )
    )
    answer = ipyllm.Stream(
        resolve("openai", api_key=key, env={}),
        [{"role": "user", "content": "x"}],
        {},
        transport=transport,
    )
    events = []
    with pytest.raises(ProviderError) as caught:
        async for event in answer:
            events.append(event)
    assert answer.transcript.text == "Hi"
    for text in (repr(events), str(caught.value), repr(answer.transcript.server_error)):
        assert key not in text and "bad key ***" in text
