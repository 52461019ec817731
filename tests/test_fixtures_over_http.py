"""Every wire capture, served by the teaching server over real HTTP, whole and in pieces."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ipyllm
from ipyllm import (
    AuthenticationError,
    HTTPStatusError,
    ProviderError,
    RateLimitError,
    TruncatedError,
)
from ipyllm.client import Stream, normalize_messages, resolve

from .conftest import FIXTURES, base_url_for, dialect_of

STREAMS = sorted(p.name for p in FIXTURES.glob("*") if p.suffix in (".sse", ".ndjson"))
HTTP_ERRORS = sorted(p.name for p in FIXTURES.glob("*.http"))
SPLITS = ["", "split=1", "split=2", "split=7", "split=random,seed=1", "split=random,seed=2"]


def check_transcript(transcript: ipyllm.Transcript, want: dict[str, Any]) -> None:
    assert transcript.text == want["text"]
    assert transcript.reasoning == want.get("reasoning", "")
    assert transcript.refusal == want.get("refusal", "")
    assert transcript.finish_reason == want["finish_reason"]
    if want["usage"] is None:
        assert transcript.usage is None
    else:
        assert transcript.usage is not None
        assert {k: transcript.usage.raw.get(k) for k in want["usage"]} == want["usage"]
    calls = [
        {
            "index": c.index,
            "id": c.id,
            "name": c.name,
            "arguments": c.parsed_arguments(),
        }
        for c in transcript.tool_calls
    ]
    want_calls = [
        {
            **c,
            "arguments": c["arguments"]
            if isinstance(c["arguments"], dict)
            else json.loads(c["arguments"]),
        }
        for c in want.get("tool_calls", [])
    ]
    assert calls == want_calls


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("fixture", STREAMS)
async def test_fixture_gives_its_expected_result(
    server: Any, expected: dict[str, Any], fixture: str, split: str
) -> None:
    want = expected[fixture]
    provider = dialect_of(fixture)
    options = ",".join(filter(None, [f"replay={fixture}", split]))
    answer = ipyllm.stream(
        "hi",
        provider=provider,
        base_url=base_url_for(server.url, provider, options),
        api_key="test-key",
        model="m",
    )
    error: ipyllm.StreamError | None = None
    try:
        async for _ in answer:
            pass
    except ipyllm.StreamError as exc:
        error = exc
    transcript = answer.transcript
    check_transcript(transcript, want)
    if want["error"] is None:
        assert error is None
        assert transcript.status == "done"
        return
    assert transcript.status == "error"
    assert transcript.error is error
    assert error is not None and error.transcript is transcript
    if want["error"] == {"type": "truncated"}:
        assert isinstance(error, TruncatedError)
        assert "middle of an event" in str(error)
        return
    assert isinstance(error, ProviderError)
    assert want["error"]["message"] in str(error)
    for key in ("type", "code"):
        if key in want["error"]:
            assert getattr(error, f"error_{key}") == want["error"][key]


@pytest.mark.parametrize("fixture", HTTP_ERRORS)
async def test_http_error_fixture_gives_a_typed_clear_error(
    server: Any, expected: dict[str, Any], fixture: str
) -> None:
    want = expected[fixture]
    provider = dialect_of(fixture)
    with pytest.raises(HTTPStatusError) as caught:
        await ipyllm.achat(
            "hi",
            provider=provider,
            base_url=base_url_for(server.url, provider, f"replay={fixture}"),
            api_key="test-key",
            max_retries=0,
        )
    error = caught.value
    assert error.status_code == want["status"]
    details = {"type": error.error_type, "code": error.error_code, "status": error.error_type}
    for key, value in want["error"].items():
        assert details[key] == str(value)
    assert error.server_message and error.server_message in str(error)
    if want["status"] == 401:
        assert isinstance(error, AuthenticationError)
        assert "OPENAI_API_KEY" in str(error)
    if want["status"] == 429:
        assert isinstance(error, RateLimitError)
        assert "rate limit" in str(error)
        if "retry_after_s" in want:
            assert error.retry_after == pytest.approx(want["retry_after_s"])
            assert f"Retry after {want['retry_after_s']:g} s" in str(error)
    assert error.transcript is not None and error.transcript.status == "error"


@pytest.mark.parametrize("fixture", HTTP_ERRORS)
async def test_retryable_statuses_are_retried_and_others_are_not(
    server: Any, expected: dict[str, Any], fixture: str
) -> None:
    want = expected[fixture]
    provider = dialect_of(fixture)
    base_url = base_url_for(server.url, provider, f"replay={fixture}")
    answer = Stream(
        resolve(provider, base_url=base_url, api_key="test-key"),
        normalize_messages("hi"),
        {},
        max_retries=1,
        # Waiting out a real retry-after (23 s for Anthropic) is not this test's business:
        retry_budget=2.0,
    )
    with pytest.raises(HTTPStatusError):
        async for _ in answer:
            pass
    requests = [r for r in server.app.log if r["event"] == "request"]
    long_wait = want.get("retry_after_s", 0) > answer.retry_budget
    retried = want["retryable"] and not long_wait
    assert len(requests) == (2 if retried else 1)
    assert answer.transcript.retries == (1 if retried else 0)
