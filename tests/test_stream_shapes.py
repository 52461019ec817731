"""Real servers' shapes beyond the happy path, over 127.0.0.1 through the teaching server.

The captures in tests/fixtures (see its README) are the teaching server's own output
with the /with/ options that give each shape: something after the end event (LiteLLM's
[DONE], junk), llama.cpp's and OpenRouter's in-stream errors, an incomplete Responses
answer, whole JSON answers where a stream was asked for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipyllm
from ipyllm import ProtocolError, ProviderError, Transcript
from ipyllm.client import resolve
from ipyllm.dialects import get_dialect
from ipyllm.events import Finish, RawEvent, TextDelta
from ipyllm.render import status_line
from ipyllm.server import TeachingServer, demo_answer, demo_tokens

from .conftest import base_url_for
from .test_fuzz import check_event, corrupted, json_values

SHAPES = Path(__file__).resolve().parent / "fixtures"
QUESTION = "Why is the sky blue?"
CAPTURED = demo_answer([{"role": "user", "content": QUESTION}], words=4)  # capture.py's answer
PROVIDERS = ["openai", "openai-completions", "openai-responses", "anthropic", "ollama", "gemini"]
HINT = (
    "the server may have failed before its first token, for example a prompt longer than "
    "its context window; check the server's log."
)
ONE_READ, EVENT_PER_READ = "", "split=event,delay=0.02"
SPLITS = [ONE_READ, EVENT_PER_READ, "split=1", "split=7", "split=random,seed=3"]


@pytest.fixture
async def server() -> AsyncIterator[TeachingServer]:
    async with TeachingServer(fixtures_dir=SHAPES, token_rate=0, first_token_latency=0) as running:
        yield running


class Reads(httpx.AsyncBaseTransport):
    """The network, recording the body bytes of each read the client makes."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport()
        self.reads: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.network.handle_async_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Recorded(response.stream, self.reads),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.network.aclose()


class _Recorded(httpx.AsyncByteStream):
    def __init__(self, stream: Any, reads: list[bytes]) -> None:
        self.stream, self.reads = stream, reads

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.reads.append(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def open_stream(
    server: TeachingServer, provider: str, options: str = "", **kw: Any
) -> ipyllm.Stream:
    kw.setdefault("model", "demo")
    return ipyllm.stream(
        QUESTION,
        provider=provider,
        base_url=base_url_for(server.url, provider, options),
        api_key="sk-test-canary-0123456789",
        **kw,
    )


async def run(answer: ipyllm.Stream) -> tuple[list[Any], ipyllm.StreamError | None]:
    events: list[Any] = []
    try:
        async for event in answer:
            events.append(event)
    except ipyllm.StreamError as error:
        return events, error
    return events, None


def replay(server: TeachingServer, provider: str, fixture: str, split: str) -> ipyllm.Stream:
    options = ",".join(filter(None, [f"replay={fixture}", split]))
    return open_stream(server, provider, options)


# -- 1. nothing after the end event is read ------------------------------------------------

AFTER_END = [
    ("openai", "openai_after_end_junk.sse", "stop"),
    ("openai-completions", "openai_completions_after_end_junk.sse", "stop"),
    ("openai-responses", "openai_responses_after_end_done.sse", "completed"),
    ("openai-responses", "openai_responses_after_end_junk.sse", "completed"),
    ("anthropic", "anthropic_after_end_junk.sse", "end_turn"),
    ("gemini", "gemini_after_end_junk.sse", "STOP"),
    ("ollama", "ollama_after_end_junk.ndjson", "stop"),
]


def last_event(body: bytes) -> str:
    """The data of a capture's last wire event: what after_end put after the end event."""
    text = body.decode().replace("\r\n", "\n").rstrip("\n")
    block = text.rsplit("\n\n", 1)[-1] if "\n\n" in text else text.rsplit("\n", 1)[-1]
    data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
    return "\n".join(data) if data else block


@pytest.mark.parametrize("split", [ONE_READ, EVENT_PER_READ], ids=["one-read", "event-per-read"])
@pytest.mark.parametrize(
    ("provider", "fixture", "finish"), AFTER_END, ids=[f for _, f, _ in AFTER_END]
)
async def test_whatever_follows_the_end_event_is_never_interpreted(
    server: TeachingServer, provider: str, fixture: str, finish: str, split: str
) -> None:
    body = (SHAPES / fixture).read_bytes()
    junk = last_event(body)
    reads = Reads()
    options = ",".join(filter(None, [f"replay={fixture}", split]))
    target = resolve(provider, "demo", base_url_for(server.url, provider, options), "k", env={})
    answer = ipyllm.Stream(
        target, [{"role": "user", "content": QUESTION}], {}, raw=True, transport=reads
    )
    events, error = await run(answer)
    assert error is None, error
    transcript = answer.transcript
    assert (transcript.status, transcript.text, transcript.finish_reason) == (
        "done",
        CAPTURED,
        finish,
    )
    received = b"".join(reads.reads)
    assert body.startswith(received)
    if split == ONE_READ:
        assert len(reads.reads) == 1  # the end event and what follows it, in one read
    else:
        assert len(reads.reads) > 5  # one event per read: reading stops at the end event
        assert junk.encode() not in received
    assert junk not in [e.data for e in events if isinstance(e, RawEvent)]


async def test_litellm_done_after_a_responses_stream_keeps_the_answer_at_any_split(
    server: TeachingServer,
) -> None:
    for split in SPLITS:
        answer = replay(server, "openai-responses", "openai_responses_after_end_done.sse", split)
        _, error = await run(answer)
        assert error is None, (split, error)
        assert answer.transcript.text == CAPTURED


# -- 2. other servers' in-stream errors in the OpenAI format -------------------------------


@pytest.mark.parametrize("split", SPLITS)
async def test_llamacpp_error_field_is_a_provider_error_with_its_code(
    server: TeachingServer, split: str
) -> None:
    answer = replay(server, "openai", "llamacpp_error_field.sse", split)
    events, error = await run(answer)
    assert isinstance(error, ProviderError), error
    assert (error.error_code, error.error_type) == ("500", "server_error")
    assert "The model failed while generating the answer." in str(error)
    transcript = answer.transcript
    assert transcript.status == "error" and transcript.error is error
    assert transcript.text == "".join(demo_tokens(CAPTURED)[:4])  # the text before it is kept
    assert transcript.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert transcript.finish_reason is None


@pytest.mark.parametrize("split", SPLITS)
async def test_openrouter_error_chunk_keeps_the_text_and_the_finish_reason(
    server: TeachingServer, split: str
) -> None:
    answer = replay(server, "openai", "openrouter_error_chunk.sse", split)
    _, error = await run(answer)
    assert isinstance(error, ProviderError), error
    assert error.error_code == "server_error"
    assert "The upstream provider disconnected." in str(error)
    transcript = answer.transcript
    assert transcript.text == "".join(demo_tokens(CAPTURED)[:4])
    assert transcript.finish_reason == "error"
    assert transcript.status == "error"


@pytest.mark.parametrize("style", ["llamacpp", "openrouter"])
@pytest.mark.parametrize("provider", ["openai", "openai-completions"])
async def test_error_styles_live_from_the_teaching_server(
    server: TeachingServer, provider: str, style: str
) -> None:
    answer = open_stream(server, provider, f"error_after=9,error_style={style}")
    _, error = await run(answer)
    assert isinstance(error, ProviderError) and "mid-stream" in str(error)
    assert error.error_code == ("500" if style == "llamacpp" else "server_error")
    full = demo_answer([{"role": "user", "content": QUESTION}])
    assert answer.transcript.text == "".join(demo_tokens(full)[:9])
    assert answer.transcript.finish_reason == (None if style == "llamacpp" else "error")


# -- 3. an incomplete Responses answer says why --------------------------------------------


async def test_incomplete_responses_answer_keeps_the_token_limit_as_its_reason(
    server: TeachingServer,
) -> None:
    answer = open_stream(server, "openai-responses", max_tokens=5)
    _, error = await run(answer)
    assert error is None
    transcript = answer.transcript
    assert transcript.finish_reason == "max_output_tokens"
    assert transcript.cut_off == "max_tokens"
    assert "cut off by the max tokens limit" in status_line(transcript)


@pytest.mark.parametrize(
    ("fixture", "reason", "said"),
    [
        ("openai_responses_max_output_tokens.sse", "max_output_tokens", "max tokens limit"),
        ("openai_responses_content_filter.sse", "content_filter", "stopped by the content filter"),
    ],
)
@pytest.mark.parametrize("split", [ONE_READ, EVENT_PER_READ])
async def test_incomplete_details_reach_the_transcript_and_the_status_line(
    server: TeachingServer, fixture: str, reason: str, said: str, split: str
) -> None:
    answer = replay(server, "openai-responses", fixture, split)
    _, error = await run(answer)
    assert error is None
    transcript = answer.transcript
    assert transcript.status == "done" and transcript.finish_reason == reason
    assert transcript.text == "".join(demo_tokens(CAPTURED)[:4])
    assert f"finish: {reason}" in status_line(transcript) and said in status_line(transcript)
    assert not transcript.notes


# -- 4. a whole JSON answer where a stream was asked for ------------------------------------


@pytest.mark.parametrize("model", ["demo", "demo-reasoning"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_whole_json_answer_is_accepted_in_every_dialect(
    server: TeachingServer, provider: str, model: str
) -> None:
    streamed = open_stream(server, provider, model=model)
    assert (await run(streamed))[1] is None
    whole = open_stream(server, provider, "whole=1", model=model, raw=True)
    events, error = await run(whole)
    assert error is None, error
    got, want = whole.transcript, streamed.transcript
    assert got.status == "done"
    assert (got.text, got.reasoning, got.finish_reason) == (
        want.text,
        want.reasoning,
        want.finish_reason,
    )
    assert got.usage is not None and got.usage.output_tokens
    if want.usage is not None:  # legacy completions stream no usage unless asked
        assert (got.usage.input_tokens, got.usage.output_tokens) == (
            want.usage.input_tokens,
            want.usage.output_tokens,
        )
    assert sum(isinstance(e, Finish) for e in events) == 1
    assert [e for e in events if isinstance(e, RawEvent)], "--events shows the JSON answer"
    assert not got.notes


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_whole_json_answer_cut_by_the_token_limit_says_so(
    server: TeachingServer, provider: str
) -> None:
    answer = open_stream(server, provider, "whole=1", max_tokens=3)
    _, error = await run(answer)
    assert error is None
    assert answer.transcript.cut_off == "max_tokens"
    assert "cut off by the max tokens limit" in status_line(answer.transcript)


WHOLE_TOOLS = [
    ("openai", "openai_whole_tool_calls.http", "tool_calls", ["call_paris", "call_tokyo"]),
    (
        "openai-responses",
        "openai_responses_whole_tool_calls.http",
        "completed",
        ["call_paris", "call_tokyo"],
    ),
    ("anthropic", "anthropic_whole_tool_use.http", "tool_use", ["toolu_paris", "toolu_tokyo"]),
    ("gemini", "gemini_whole_function_call.http", "STOP", [None, None]),
    ("ollama", "ollama_whole_tool_calls.http", "stop", [None, None]),
]


@pytest.mark.parametrize(("provider", "fixture", "finish", "ids"), WHOLE_TOOLS)
async def test_a_whole_json_answer_keeps_its_tool_calls(
    server: TeachingServer, provider: str, fixture: str, finish: str, ids: list[str | None]
) -> None:
    answer = replay(server, provider, fixture, "")
    _, error = await run(answer)
    assert error is None, error
    transcript = answer.transcript
    assert transcript.status == "done" and transcript.finish_reason == finish
    assert transcript.text == "Checking both cities."
    assert transcript.reasoning == ("" if provider == "openai" else "Two cities.")
    calls = [(c.id, c.name, c.parsed_arguments()) for c in transcript.tool_calls]
    assert calls == [
        (ids[0], "get_weather", {"city": "Paris"}),
        (ids[1], "get_weather", {"city": "Tokyo"}),
    ]
    assert len({c.index for c in transcript.tool_calls}) == 2
    assert transcript.usage is not None and transcript.usage.input_tokens == 30


@pytest.mark.parametrize(
    ("provider", "body", "code"),
    [
        ("openai", {"error": {"message": "This model's context is full.", "type":
                              "invalid_request_error", "code": "context_length_exceeded"}},
         "context_length_exceeded"),
        ("anthropic", {"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "This model's context is full."}},
         None),
        ("gemini", {"error": {"code": 400, "message": "This model's context is full.",
                              "status": "INVALID_ARGUMENT"}}, "400"),
        ("openai-responses", {"detail": "This model's context is full."}, None),
    ],
)  # fmt: skip
async def test_a_json_error_document_stays_the_servers_error(
    server: TeachingServer, tmp_path: Path, provider: str, body: dict[str, Any], code: str | None
) -> None:
    (tmp_path / "error.http").write_bytes(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + json.dumps(body).encode()
    )
    async with TeachingServer(fixtures_dir=tmp_path) as errors:
        _, error = await run(open_stream(errors, provider, "replay=error.http"))
    assert isinstance(error, ProviderError), error
    assert "This model's context is full." in str(error) and "mid-stream" not in str(error)
    assert error.error_code == code


async def test_a_json_document_that_is_no_answer_is_a_protocol_error(tmp_path: Path) -> None:
    (tmp_path / "other.http").write_bytes(
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"hello": "world"}'
    )
    async with TeachingServer(fixtures_dir=tmp_path) as other:
        _, error = await run(open_stream(other, "openai", "replay=other.http"))
    assert isinstance(error, ProtocolError)
    assert "a JSON document instead of a stream" in str(error) and "hello" in str(error)


# -- 5. an empty answer hints at what may have happened -------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_empty_body_hints_at_a_failure_before_the_first_token(
    server: TeachingServer, provider: str
) -> None:
    _, error = await run(open_stream(server, provider, "empty=1"))
    assert isinstance(error, ProtocolError)
    assert "empty body" in str(error) and HINT in str(error)


@pytest.mark.parametrize("whole", ["", "whole=1"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_answer_done_with_nothing_in_it_hints_at_the_same(
    server: TeachingServer, provider: str, whole: str
) -> None:
    answer = open_stream(server, provider, whole, max_tokens=0)
    _, error = await run(answer)
    assert error is None
    transcript = answer.transcript
    assert transcript.status == "done" and transcript.text == ""
    assert [note for note in transcript.notes if HINT in note]


async def test_an_answer_with_text_gets_no_hint(server: TeachingServer) -> None:
    answer = open_stream(server, "openai", max_tokens=1)
    assert (await run(answer))[1] is None
    assert answer.transcript.text and not answer.transcript.notes


# -- whole answers of any shape: valid events or None, never a crash ------------------------

WHOLE_ANSWERS = {provider: fixture for provider, fixture, _, _ in WHOLE_TOOLS}


def whole_answer(fixture: str) -> Any:
    return json.loads((SHAPES / fixture).read_bytes().partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("provider", [*WHOLE_ANSWERS, "openai-completions"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_each_parser_maps_any_whole_answer_to_valid_events_or_none(
    provider: str, data: st.DataObject
) -> None:
    fixture = WHOLE_ANSWERS.get(provider, "openai_whole_tool_calls.http")
    answer = data.draw(corrupted(st.just(whole_answer(fixture))) | json_values)
    events = get_dialect(provider).new_parser().parse_answer(answer)
    if events is None:
        return
    transcript = Transcript(provider=provider)
    for event in events:
        check_event(event)
        transcript.apply(event)
    transcript.end("done")
    status_line(transcript)
