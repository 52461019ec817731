"""The teaching server over real loopback HTTP, its in-process transport, and its CLI."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import ipyllm
from ipyllm.server import (
    DEMO_MODELS,
    DemoTransport,
    ServerThread,
    TeachingApp,
    TeachingServer,
    demo_answer,
    demo_reasoning,
    demo_tokens,
)

from .conftest import FIXTURES

FIXTURE_FILES = sorted(
    p.name for p in FIXTURES.iterdir() if p.suffix in (".sse", ".ndjson", ".http")
)
FAST = "/with/rate=0,latency=0"

HISTORY = [
    {"role": "user", "content": "What is a loop?"},
    {"role": "assistant", "content": "A loop repeats code."},
    {"role": "user", "content": "Show me an example, please."},
]


@pytest.fixture
async def client(server: TeachingServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        yield http


# -- wire parsing, as strict as the formats allow ----------------------------------------


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per event; the body must end on an event boundary."""
    text = body.decode("utf-8").replace("\r\n", "\n")
    assert text.endswith("\n\n"), "SSE body must end with a blank line"
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events


def sse_json(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(name, json.loads(data)) for name, data in sse_events(body) if data != "[DONE]"]


def ndjson(body: bytes) -> list[dict[str, Any]]:
    text = body.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def chat_parts(body: bytes, key: str = "content") -> list[str]:
    return [
        e["choices"][0]["delta"][key]
        for _, e in sse_json(body)
        if e.get("choices") and e["choices"][0]["delta"].get(key)
    ]


def legacy_parts(body: bytes) -> list[str]:
    return [e["choices"][0]["text"] for _, e in sse_json(body) if e["choices"]]


def responses_parts(body: bytes, kind: str = "response.output_text.delta") -> list[str]:
    events = sse_json(body)
    assert all(name == e["type"] for name, e in events)
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    return [e["delta"] for _, e in events if e["type"] == kind]


def anthropic_parts(body: bytes, kind: str = "text_delta") -> list[str]:
    events = sse_json(body)
    assert all(name == e["type"] for name, e in events)
    field = "text" if kind == "text_delta" else "thinking"
    return [
        e["delta"][field]
        for _, e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == kind
    ]


def ollama_parts(body: bytes, field: str = "content") -> list[str]:
    lines = ndjson(body)
    return [line.get("message", line).get(field, "") for line in lines if not line["done"]]


def gemini_parts(body: bytes, thought: bool = False) -> list[str]:
    assert b"\r\n\r\n" in body and b"\n\n" not in body.replace(b"\r\n\r\n", b"")
    return [
        part["text"]
        for _, e in sse_json(body)
        for part in e["candidates"][0]["content"]["parts"]
        if part.get("thought", False) == thought and part["text"]
    ]


def gemini_contents(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
        for m in messages
    ]


# route name -> (path, request body for (messages, model), text extractor, reasoning extractor)
Route = tuple[str, Callable[[list[dict[str, str]], str], dict[str, Any]], Callable, Callable | None]
ROUTES: dict[str, Route] = {
    "chat": (
        "/v1/chat/completions",
        lambda msgs, model: {"model": model, "stream": True, "messages": msgs},
        chat_parts,
        lambda body: chat_parts(body, "reasoning_content"),
    ),
    "responses": (
        "/v1/responses",
        lambda msgs, model: {"model": model, "stream": True, "input": msgs},
        responses_parts,
        lambda body: responses_parts(body, "response.reasoning_summary_text.delta"),
    ),
    "anthropic": (
        "/v1/messages",
        lambda msgs, model: {
            "model": model,
            "stream": True,
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
                for m in msgs
            ],
        },
        anthropic_parts,
        lambda body: anthropic_parts(body, "thinking_delta"),
    ),
    "ollama_chat": (
        "/api/chat",
        lambda msgs, model: {"model": model, "messages": msgs},
        ollama_parts,
        lambda body: ollama_parts(body, "thinking"),
    ),
    "gemini": (
        "/v1beta/models/{model}:streamGenerateContent?alt=sse",
        lambda msgs, model: {
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": gemini_contents(msgs),
        },
        gemini_parts,
        lambda body: gemini_parts(body, thought=True),
    ),
}


async def post_route(
    client: httpx.AsyncClient, name: str, prefix: str = "", model: str = "demo", **extra: Any
) -> httpx.Response:
    path, make_body, _, _ = ROUTES[name]
    return await client.post(
        prefix + path.format(model=model), json=make_body(HISTORY, model) | extra
    )


# -- the demo model ----------------------------------------------------------------------


def test_demo_answer_has_every_markdown_feature_and_the_history() -> None:
    answer = demo_answer(HISTORY)
    assert 800 <= len(answer) <= 1500
    assert re.search(r"^## \S", answer, re.M)
    assert re.search(r"^- .+\n  - ", answer, re.M)
    assert re.search(r"^```[a-z]+\n", answer, re.M)
    assert re.search(r"^\|:?-+:?\|-+:\|:-+:\|$", answer, re.M)
    assert re.search(r"\$[^$\n]+\$", answer) and "$$\n" in answer
    assert "Turn 2" in answer and "Show me an example, please." in answer


def test_demo_answer_is_deterministic_and_depends_on_the_prompt() -> None:
    prompts = [f"question number {i}" for i in range(8)]
    answers = [demo_answer([{"role": "user", "content": p}]) for p in prompts]
    assert answers == [demo_answer([{"role": "user", "content": p}]) for p in prompts]
    topics = {a.splitlines()[0] for a in answers}
    assert len(topics) >= 2


def test_demo_answer_length_controls() -> None:
    short = demo_answer([{"role": "user", "content": "Explain loops"}])
    long = demo_answer([{"role": "user", "content": "Explain loops, a long answer please"}])
    assert 4 * len(short) <= len(long) <= 7 * len(short)
    assert 1800 <= len(demo_answer(HISTORY, words=2000).split()) <= 2200
    tiny = demo_answer(HISTORY, words=12)
    assert tiny.startswith("## ") and len(tiny.split()) <= 20


@pytest.mark.parametrize(
    "text",
    ["", "plain words, here.", "tabs\tand  spaces\r\n\n", "你好，世界！🌏 こんにちは", "a" * 50],
)
def test_demo_tokens_concatenate_back(text: str) -> None:
    tokens = demo_tokens(text)
    assert "".join(tokens) == text
    assert all(tokens)


def test_demo_tokens_look_like_tokens() -> None:
    assert demo_tokens("Hello, big world!\n") == ["Hello", ",", " big", " world", "!", "\n"]
    assert DEMO_MODELS == ["demo", "demo-reasoning"]


# -- every route streams the demo answer ---------------------------------------------------


@pytest.mark.parametrize("name", ROUTES)
async def test_route_streams_the_demo_answer_one_token_per_event(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await post_route(client, name)
    assert response.status_code == 200
    parts = ROUTES[name][2](response.content)
    assert "".join(parts) == demo_answer(HISTORY)
    assert parts == demo_tokens(demo_answer(HISTORY))


@pytest.mark.parametrize("name", ROUTES)
async def test_reasoning_model_streams_reasoning_first(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await post_route(client, name, model="demo-reasoning")
    extract_reasoning = ROUTES[name][3]
    assert extract_reasoning is not None
    assert "".join(extract_reasoning(response.content)) == demo_reasoning(HISTORY)
    assert "".join(ROUTES[name][2](response.content)) == demo_answer(HISTORY)
    assert b"demo-reasoning" in response.content  # the model name is echoed


async def test_openai_chat_chunk_shape_and_done(client: httpx.AsyncClient) -> None:
    response = await post_route(client, "chat", model="my-model")
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.content)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert {c["model"] for c in chunks} == {"my-model"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert all("usage" not in c for c in chunks)


async def test_openai_include_usage_adds_a_usage_chunk(client: httpx.AsyncClient) -> None:
    response = await post_route(client, "chat", stream_options={"include_usage": True})
    chunks = [e for _, e in sse_json(response.content)]
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == len(demo_tokens(demo_answer(HISTORY)))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_legacy_completions(client: httpx.AsyncClient) -> None:
    prompt = "Roses are"
    response = await client.post(
        "/v1/completions", json={"model": "demo", "prompt": prompt, "stream": True}
    )
    events = sse_events(response.content)
    assert events[-1] == (None, "[DONE]")
    assert "".join(legacy_parts(response.content)) == demo_answer(
        [{"role": "user", "content": prompt}]
    )
    assert json.loads(events[-2][1])["choices"][0]["finish_reason"] == "stop"


async def test_ollama_generate(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/generate", json={"model": "demo", "prompt": "Why?"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(response.content)
    assert "".join(line["response"] for line in lines) == demo_answer(
        [{"role": "user", "content": "Why?"}]
    )
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert all(line["done"] is False for line in lines[:-1])


async def test_responses_and_anthropic_finish_events(client: httpx.AsyncClient) -> None:
    responses = sse_json((await post_route(client, "responses")).content)
    assert responses[-1][1]["type"] == "response.completed"
    assert responses[-1][1]["response"]["output"][0]["content"][0]["text"] == demo_answer(HISTORY)
    anthropic = sse_json((await post_route(client, "anthropic")).content)
    assert [name for name, _ in anthropic[-2:]] == ["message_delta", "message_stop"]
    assert anthropic[-2][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("name", "limit", "finish"),
    [
        ("chat", {"max_tokens": 5}, lambda b: sse_json(b)[-1][1]["choices"][0]["finish_reason"]),
        (
            "chat",
            {"max_completion_tokens": 5},
            lambda b: sse_json(b)[-1][1]["choices"][0]["finish_reason"],
        ),
        ("anthropic", {"max_tokens": 5}, lambda b: sse_json(b)[-2][1]["delta"]["stop_reason"]),
        ("responses", {"max_output_tokens": 5}, lambda b: sse_json(b)[-1][1]["type"]),
        ("ollama_chat", {"options": {"num_predict": 5}}, lambda b: ndjson(b)[-1]["done_reason"]),
        (
            "gemini",
            {"generationConfig": {"maxOutputTokens": 5}},
            lambda b: sse_json(b)[-1][1]["candidates"][0]["finishReason"],
        ),
    ],
)
async def test_token_limit_cuts_the_answer(
    client: httpx.AsyncClient, name: str, limit: dict[str, Any], finish: Callable
) -> None:
    response = await post_route(client, name, **limit)
    assert ROUTES[name][2](response.content) == demo_tokens(demo_answer(HISTORY))[:5]
    assert finish(response.content) in ("length", "max_tokens", "response.incomplete", "MAX_TOKENS")


async def test_non_streamed_answers(client: httpx.AsyncClient) -> None:
    expected = demo_answer(HISTORY)
    chat = (await post_route(client, "chat", stream=False)).json()
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["content"] == expected
    assert chat["choices"][0]["finish_reason"] == "stop"
    anthropic = await client.post(
        "/v1/messages", json={"model": "demo", "max_tokens": 100, "messages": HISTORY}
    )
    assert anthropic.json()["content"][-1]["text"] == "".join(demo_tokens(expected)[:100])
    assert anthropic.json()["stop_reason"] == "max_tokens"
    ollama = await post_route(client, "ollama_chat", stream=False)
    assert ollama.headers["content-type"] == "application/json"
    assert ollama.json()["message"]["content"] == expected
    gemini = await client.post(
        "/v1beta/models/demo:generateContent", json={"contents": gemini_contents(HISTORY)}
    )
    assert gemini.json()["candidates"][0]["content"]["parts"][0]["text"] == expected


async def test_model_lists_help_and_unknown_routes(client: httpx.AsyncClient) -> None:
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == DEMO_MODELS
    tags = (await client.get("/api/tags")).json()
    assert [m["name"] for m in tags["models"]] == DEMO_MODELS
    help_page = await client.get("/")
    assert help_page.headers["content-type"].startswith("text/plain")
    assert "/with/" in help_page.text and "/v1/chat/completions" in help_page.text
    missing = await client.post("/v2/nothing", json={})
    assert missing.status_code == 404 and "message" in missing.json()["error"]
    wrong_method = await client.get("/v1/chat/completions")
    assert wrong_method.status_code == 405
    bad_json = await client.post("/v1/messages", content=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json()["type"] == "error"
    no_sse = await client.post("/v1beta/models/demo:streamGenerateContent", json={"contents": []})
    assert no_sse.status_code == 400 and no_sse.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("options", ["rate=abc", "latency=-1", "nope=1", "status=200", "rate"])
async def test_bad_options_are_a_clear_400(client: httpx.AsyncClient, options: str) -> None:
    response = await post_route(client, "chat", prefix=f"/with/{options}")
    assert response.status_code == 400
    assert options.split("=")[0] in response.json()["error"]["message"]


async def test_pacing_first_token_latency_then_rate(client: httpx.AsyncClient) -> None:
    start = time.monotonic()
    arrivals = []
    async with client.stream(
        "POST",
        "/with/latency=0.2,rate=50,words=8/v1/chat/completions",
        json={"model": "demo", "stream": True, "messages": HISTORY},
    ) as response:
        async for line in response.aiter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.monotonic() - start)
    tokens = len(demo_tokens(demo_answer(HISTORY, words=8)))
    assert len(arrivals) == tokens
    assert 0.18 <= arrivals[0] < 0.6
    assert arrivals[-1] - arrivals[0] >= 0.9 * (tokens - 1) / 50


# -- replays of the captured fixtures --------------------------------------------------------


def _raw_http_fixture(name: str) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, body = (FIXTURES / name).read_bytes().partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines)]
    return int(status_line.split(" ")[1]), headers, body


@pytest.mark.parametrize("name", FIXTURE_FILES)
async def test_replay_is_byte_identical_however_split(client: httpx.AsyncClient, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    for split in ("", ",split=1", ",split=7", ",split=random,seed=3"):
        response = await client.post(f"/with/replay={name}{split}/v1/chat/completions")
        if name.endswith(".http"):
            status, headers, body = _raw_http_fixture(name)
            assert response.status_code == status
            for key, value in headers:
                if key != "content-length":
                    assert response.headers[key] == value
            assert response.headers["content-length"] == str(len(body))
            assert response.content == body
        else:
            assert response.status_code == 200
            assert response.content == data
            expected_type = "text/event-stream" if name.endswith(".sse") else "application/x-ndjson"
            assert response.headers["content-type"] == expected_type


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("..%2FINDEX.md", 400),
        ("%2E%2E%2F..%2Fetc%2Fpasswd.sse", 400),
        ("..%5Cx.sse", 400),
        ("INDEX.md", 400),
        ("nothing_here.sse", 404),
    ],
)
async def test_replay_rejects_bad_names(name: str, status: int) -> None:
    # Straight to the app: an HTTP client would normalise some of these paths itself.
    app = TeachingApp(fixtures_dir=FIXTURES)
    response = await app.handle("POST", f"/with/replay={name}/v1/chat/completions", {}, b"")
    assert response.status == status
    body = b"".join([piece async for piece in response.body])
    assert "replay" in body.decode() or "fixture" in body.decode()


# -- faults ----------------------------------------------------------------------------------


async def test_status_with_retry_after_then_recovers_after_times(
    client: httpx.AsyncClient,
) -> None:
    prefix = "/with/status=429,retry_after=1,retry_after_ms=250,times=2,rate=0,latency=0"
    for _ in range(2):
        failed = await post_route(client, "chat", prefix=prefix)
        assert failed.status_code == 429
        assert failed.headers["retry-after"] == "1"
        assert failed.headers["retry-after-ms"] == "250"
        error = failed.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "rate_limit_exceeded"
    recovered = await post_route(client, "chat", prefix=prefix)
    assert recovered.status_code == 200
    assert "".join(chat_parts(recovered.content)) == demo_answer(HISTORY)


@pytest.mark.parametrize(
    ("name", "status", "check"),
    [
        ("chat", 401, lambda b: b["error"]["code"] == "invalid_api_key"),
        (
            "anthropic",
            529,
            lambda b: (
                b
                == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
        ),
        ("anthropic", 401, lambda b: b["error"]["type"] == "authentication_error"),
        (
            "gemini",
            429,
            lambda b: b["error"]["status"] == "RESOURCE_EXHAUSTED" and b["error"]["code"] == 429,
        ),
        ("ollama_chat", 500, lambda b: isinstance(b["error"], str)),
        ("responses", 500, lambda b: b["error"]["type"] == "server_error"),
    ],
)
async def test_status_uses_the_provider_envelope(
    client: httpx.AsyncClient, name: str, status: int, check: Callable
) -> None:
    response = await post_route(client, name, prefix=f"/with/status={status}")
    assert response.status_code == status
    assert check(response.json())


async def test_error_bodies_html_and_empty(client: httpx.AsyncClient) -> None:
    proxy = await post_route(client, "chat", prefix="/with/status=502,body=html")
    assert proxy.status_code == 502
    assert proxy.headers["content-type"].startswith("text/html")
    assert "<html>" in proxy.text and "502 Bad Gateway" in proxy.text
    empty_error = await post_route(client, "chat", prefix="/with/status=503,body=empty")
    assert empty_error.status_code == 503 and empty_error.content == b""
    portal = await post_route(client, "chat", prefix="/with/html=1")
    assert portal.status_code == 200
    assert portal.headers["content-type"].startswith("text/html") and "<html" in portal.text
    empty = await post_route(client, "anthropic", prefix="/with/empty=1")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "text/event-stream" and empty.content == b""


@pytest.mark.parametrize(
    ("name", "error_marker"),
    [
        ("chat", b'data: {"error":{"message":'),
        ("anthropic", b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"'),
        ("responses", b"event: response.failed\n"),
        ("ollama_chat", b'{"error":"'),
        ("gemini", b'data: {"error": {"code": 500'),
    ],
)
async def test_error_after_sends_the_in_stream_error_and_ends(
    client: httpx.AsyncClient, name: str, error_marker: bytes
) -> None:
    response = await post_route(client, name, prefix=f"{FAST},error_after=3")
    assert response.status_code == 200
    body = response.content
    assert error_marker in body
    assert body.rstrip().endswith(body[body.index(error_marker) :].rstrip().split(b"\n")[-1])
    assert b"[DONE]" not in body
    text_events = [e for e in ROUTES[name][2](body[: body.index(error_marker)])]
    assert text_events == demo_tokens(demo_answer(HISTORY))[:3]


async def test_drop_after_cuts_the_connection(
    server: TeachingServer, client: httpx.AsyncClient
) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST",
            f"{FAST},drop_after=4/v1/chat/completions",
            json={"model": "demo", "stream": True, "messages": HISTORY},
        ) as response:
            async for piece in response.aiter_raw():
                received += piece
    assert "".join(chat_parts(received)) == "".join(demo_tokens(demo_answer(HISTORY))[:4])
    assert b'finish_reason":"stop' not in received and b"[DONE]" not in received
    drop = await asyncio.to_thread(server.app.wait_for, lambda r: r["event"] == "drop", 2)
    assert drop is not None and drop["bytes"] == len(received)


@pytest.mark.parametrize("limit", [0, 1, 100, 1000])
async def test_drop_after_bytes_is_exact(client: httpx.AsyncClient, limit: int) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST", f"/with/replay=openai_chat_basic.sse,drop_after_bytes={limit}/v1/x"
        ) as response:
            async for piece in response.aiter_raw():
                received += piece
    assert received == (FIXTURES / "openai_chat_basic.sse").read_bytes()[:limit]


async def test_drop_after_bytes_on_a_demo_stream(client: httpx.AsyncClient) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST",
            f"{FAST},drop_after_bytes=777/api/chat",
            json={"model": "demo", "messages": HISTORY},
        ) as response:
            async for piece in response.aiter_raw():
                received += piece
    assert len(received) == 777


async def test_stall_then_client_timeout_is_logged_as_disconnect(server: TeachingServer) -> None:
    received = b""
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.3)) as slow:
        with pytest.raises(httpx.ReadTimeout):
            async with slow.stream(
                "POST",
                f"{server.url}{FAST},stall_after=2,stall=60/v1/chat/completions",
                json={"model": "demo", "stream": True, "messages": HISTORY},
            ) as response:
                async for piece in response.aiter_raw():
                    received += piece
    assert chat_parts(received) == demo_tokens(demo_answer(HISTORY))[:2]
    gone = await asyncio.to_thread(server.app.wait_for, lambda r: r["event"] == "disconnect", 2)
    assert gone is not None and gone["bytes"] == len(received)


async def test_stall_resumes_after_the_pause(client: httpx.AsyncClient) -> None:
    start = time.monotonic()
    response = await post_route(client, "chat", prefix=f"{FAST},stall_after=2,stall=0.3")
    assert time.monotonic() - start >= 0.3
    assert "".join(chat_parts(response.content)) == demo_answer(HISTORY)


async def test_malformed_after_sends_broken_json_then_continues(client: httpx.AsyncClient) -> None:
    response = await post_route(client, "chat", prefix=f"{FAST},malformed_after=2")
    events = sse_events(response.content)
    broken = []
    for _, data in events:
        if data != "[DONE]":
            try:
                json.loads(data)
            except json.JSONDecodeError:
                broken.append(data)
    assert len(broken) == 1
    assert events[-1] == (None, "[DONE]")
    valid = b"".join(
        f"data: {d}\n\n".encode() for _, d in events if d not in broken and d != "[DONE]"
    )
    assert "".join(chat_parts(valid)) == demo_answer(HISTORY)


# -- the log -----------------------------------------------------------------------------------


async def test_client_leaving_mid_stream_is_logged_within_half_a_second(
    server: TeachingServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream(
            "POST",
            "/with/latency=0,rate=0.1/v1/chat/completions",
            json={"model": "demo", "stream": True, "messages": HISTORY},
        ) as response:
            await anext(response.aiter_raw())  # now the server sleeps 10 s before a token
        left = time.monotonic()
    record = await asyncio.to_thread(server.app.wait_for, lambda r: r["event"] == "disconnect", 2)
    assert record is not None
    assert time.monotonic() - left < 0.5
    assert record["bytes"] > 0 and record["path"].endswith("/v1/chat/completions")
    assert [r["event"] for r in server.app.log] == ["request", "disconnect"]


async def test_log_records_and_never_logs_keys(
    server: TeachingServer, client: httpx.AsyncClient
) -> None:
    canary = "sk-canary-123"
    await client.post(
        f"/v1beta/models/demo:streamGenerateContent?alt=sse&key={canary}",
        json={"contents": gemini_contents(HISTORY)},
        headers={"Authorization": f"Bearer {canary}", "x-api-key": canary},
    )
    await post_route(client, "chat")
    log = server.app.log
    assert canary not in repr(log)
    assert log[0]["path"] == "/v1beta/models/demo:streamGenerateContent?alt=sse&key=REDACTED"
    assert [(r["event"], r["id"]) for r in log] == [
        ("request", 1),
        ("complete", 1),
        ("request", 2),
        ("complete", 2),
    ]
    for record in log:
        assert set(record) == {"time", "event", "id", "method", "path", "status", "bytes", "peer"}
        assert record["status"] == 200 and record["peer"].startswith("127.0.0.1:")
    assert log[1]["bytes"] > 1000


# -- ServerThread, DemoTransport, CLI --------------------------------------------------------


def test_server_thread_from_sync_code() -> None:
    seen: list[dict[str, Any]] = []
    with ServerThread(token_rate=0, first_token_latency=0, on_log=seen.append) as thread:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", thread.url)
        with httpx.Client(base_url=thread.url, timeout=5) as http:
            response = http.post(
                "/v1/chat/completions",
                json={"model": "demo", "stream": True, "messages": HISTORY},
            )
        assert "".join(chat_parts(response.content)) == demo_answer(HISTORY)
        assert thread.app.wait_for(lambda r: r["event"] == "complete", 2) is not None
    assert [r["event"] for r in seen] == ["request", "complete"]


def _mask_volatile(body: bytes) -> bytes:
    return re.sub(rb'"(created|created_at)":(\d+|"[^"]+")', rb'"\1":0', body)


async def test_demo_transport_gives_the_same_bytes_as_the_socket_server() -> None:
    for name in ("chat", "anthropic", "ollama_chat", "gemini", "responses"):
        async with (
            TeachingServer(token_rate=0, first_token_latency=0) as socket_server,
            httpx.AsyncClient(base_url=socket_server.url) as over_socket,
            httpx.AsyncClient(
                base_url="http://demo.invalid",
                transport=DemoTransport(token_rate=0, first_token_latency=0),
            ) as in_process,
        ):
            wire = await post_route(over_socket, name)
            local = await post_route(in_process, name)
            assert local.status_code == wire.status_code == 200
            assert local.headers["content-type"] == wire.headers["content-type"]
            assert _mask_volatile(local.content) == _mask_volatile(wire.content)


async def test_demo_transport_streams_pieces_as_produced_and_replays() -> None:
    transport = DemoTransport(fixtures_dir=FIXTURES)
    async with (
        httpx.AsyncClient(base_url="http://demo.invalid", transport=transport) as http,
        http.stream("POST", "/with/replay=anthropic_basic.sse,split=7/v1/messages") as response,
    ):
        pieces = [piece async for piece in response.aiter_raw()]
    assert b"".join(pieces) == (FIXTURES / "anthropic_basic.sse").read_bytes()
    assert max(map(len, pieces)) == 7
    assert [r["event"] for r in transport.app.log] == ["request", "complete"]
    assert transport.app.log[0]["peer"] == "in-process"


async def test_demo_transport_early_close_and_drop() -> None:
    app = TeachingApp(token_rate=0.1, first_token_latency=0)
    async with httpx.AsyncClient(
        base_url="http://demo.invalid", transport=DemoTransport(app)
    ) as http:
        async with http.stream(
            "POST", "/v1/messages", json={"stream": True, "messages": HISTORY}
        ) as response:
            await anext(response.aiter_raw())
        assert app.log[-1]["event"] == "disconnect" and app.log[-1]["bytes"] > 0
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
            await http.post(
                "/with/rate=0,drop_after=2/v1/messages",
                json={"stream": True, "messages": HISTORY},
            )
        assert app.log[-1]["event"] == "drop"


async def test_demo_transport_cancellation_logs_disconnect() -> None:
    app = TeachingApp(token_rate=1, first_token_latency=0)
    started = asyncio.Event()

    async def consume() -> None:
        async with (
            httpx.AsyncClient(base_url="http://x", transport=DemoTransport(app)) as http,
            http.stream("POST", "/api/chat", json={"messages": HISTORY}) as response,
        ):
            async for _ in response.aiter_raw():
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r["event"] for r in app.log] == ["request", "disconnect"]


def test_cli_serves_logs_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ipyllm.server", "--port", "0", "--rate", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url is not None, first
        banner = [process.stdout.readline() for _ in range(7)]
        assert any(f"--base-url {url[0]}/v1" in line for line in banner)
        response = httpx.post(
            f"{url[0]}/v1/chat/completions",
            json={"model": "demo", "stream": True, "messages": HISTORY},
            timeout=5,
        )
        assert "".join(chat_parts(response.content)) == demo_answer(HISTORY)
        request_line = process.stdout.readline()
        assert "request" in request_line and "POST /v1/chat/completions" in request_line
        assert "complete" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- other servers' shapes: split=event, after_end=, error_style=, whole= -----------------


async def test_split_event_sends_one_piece_per_event(client: httpx.AsyncClient) -> None:
    for name, route in (("gemini_stream.sse", "/v1beta/x"), ("ollama_chat.ndjson", "/api/chat")):
        data = (FIXTURES / name).read_bytes()
        path = f"/with/replay={name},split=event,delay=0.02{route}"
        async with client.stream("POST", path) as response:
            pieces = [piece async for piece in response.aiter_raw()]
        assert b"".join(pieces) == data
        end = b"\r\n\r\n" if name.endswith(".sse") else b"\n"
        assert len(pieces) == data.count(end) and all(p.endswith(end) for p in pieces)


async def test_after_end_error_style_and_whole(client: httpx.AsyncClient) -> None:
    done = await post_route(client, "responses", prefix=f"{FAST},words=3,after_end=done")
    after = done.content.split(b"event: response.completed\n")[1]
    assert after.endswith(b"}\n\ndata: [DONE]\n\n") and after.count(b"\n\n") == 2
    junk = await post_route(client, "anthropic", prefix=f"{FAST},words=3,after_end=junk")
    after = junk.content.split(b"event: message_stop\n")[1]
    assert after.count(b"\n\n") == 2 and after.endswith(b'"text":"x"\n\n')

    prefix = f"{FAST},error_after=2,error_style="
    llamacpp = await post_route(client, "chat", prefix=prefix + "llamacpp")
    assert llamacpp.content.endswith(b'"type":"server_error"}\n\ndata: [DONE]\n\n')
    assert b"\n\nerror: {" in llamacpp.content
    openrouter = await post_route(client, "chat", prefix=prefix + "openrouter")
    last = sse_json(openrouter.content)[-1][1]
    assert last["choices"][0]["finish_reason"] == "error" and last["error"]["message"]
    assert openrouter.content.endswith(b"data: [DONE]\n\n")
    refused = await post_route(client, "anthropic", prefix=prefix + "openrouter")
    assert refused.status_code == 400 and "error_style" in refused.json()["error"]["message"]

    whole = await post_route(client, "chat", prefix=f"{FAST},whole=1")
    assert whole.headers["content-type"] == "application/json"
    assert whole.json()["choices"][0]["message"]["content"] == demo_answer(HISTORY)


# -- routes nobody serves, the CLI's help and errors --------------------------------------


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/v2/nothing", lambda b: b["error"]["type"] == "invalid_request_error"
         and b["error"]["code"] is None),  # OpenAI's "invalid URL": no model_not_found
        ("/v1/messages/batches", lambda b: b["type"] == "error"
         and b["error"]["type"] == "not_found_error"),
        ("/v1beta/models/demo:countTokens", lambda b: b["error"]["status"] == "NOT_FOUND"
         and b["error"]["code"] == 404),
        ("/v1beta/cachedContents", lambda b: b["error"]["status"] == "NOT_FOUND"),
        ("/api/embed", lambda b: isinstance(b["error"], str)),
    ],
)  # fmt: skip
async def test_unknown_routes_answer_in_the_envelope_of_the_provider_they_belong_to(
    client: httpx.AsyncClient, path: str, check: Callable[[Any], bool]
) -> None:
    for prefix in ("", "/with/rate=0"):
        response = await client.post(prefix + path, json={})
        assert response.status_code == 404
        body = response.json()
        assert check(body), body
        assert "Unknown route POST" in json.dumps(body) and "GET /" in json.dumps(body)


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ipyllm.server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_cli_banner_base_urls_all_answer() -> None:
    process = _cli("--port", "0", "--rate", "0", "--latency", "0", "--quiet")
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(8)]
        suggested = [re.search(r"%%chat -p (\S+) --base-url (\S+)", line) for line in banner]
        pairs = [(m[1], m[2]) for m in suggested if m]
        assert {p for p, _ in pairs} == {"openai", "anthropic", "ollama", "gemini"}, banner
        for provider, base_url in pairs:
            transcript = await ipyllm.achat(
                "Hi", provider=provider, base_url=base_url, api_key="k", max_retries=0
            )
            assert transcript.text == demo_answer([{"role": "user", "content": "Hi"}]), provider
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


def test_cli_help_shows_url_shapes_and_fault_options() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "ipyllm.server", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0
    for text in (
        "/v1/chat/completions",
        "/v1/messages",
        "/api/chat",
        ":streamGenerateContent",
        "/with/",
        "status=CODE",
        "error_after=N",
        "drop_after=N",
        "stall_after=N",
        "malformed_after=N",
        "replay=FILE",
        "times=N",
        "after_end",
        "error_style",
    ):
        assert text in shown.stdout, text


def test_cli_says_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _cli("--port", str(port))
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert err.strip() == f"port {port} is taken, choose another with --port"
    assert "Traceback" not in out + err


# -- browsers ---------------------------------------------------------------------------------


async def test_a_browser_page_of_another_origin_may_call_and_read_it(
    client: httpx.AsyncClient, server: TeachingServer
) -> None:
    """JupyterLite's notebooks fetch from a page of their own origin: the preflight allows
    the headers asked for (a wildcard would not cover Authorization) and is not logged as a
    request; every answer, errors included, may be read by that page."""
    logged = len(server.app.log)
    asked = "authorization, content-type, x-api-key"
    preflight = await client.options(
        "/v1/chat/completions",
        headers={
            "origin": "http://127.0.0.1:9",
            "access-control-request-method": "POST",
            "access-control-request-headers": asked,
            "access-control-request-private-network": "true",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == asked
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-private-network"] == "true"
    assert len(server.app.log) == logged
    answer = await post_route(client, "chat")
    failed = await post_route(client, "chat", prefix="/with/status=401")
    for response in (answer, failed):
        assert response.headers["access-control-allow-origin"] == "*", response.status_code
