"""The pause a 429's retry-after puts on every stream to its endpoint is bounded."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from ipyllm import RateLimitError
from ipyllm.client import Stream, normalize_messages, resolve

HOSTS = itertools.count()


class Endpoint:
    """A server that answers every request 429 with the retry-after it is told, and the
    pauses streams to it took before sending, on a clock that does not really wait."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.base_url = f"http://gate-{next(HOSTS)}.invalid/v1"  # a gate of its own
        self.retry_after = "0"
        self.pauses: list[float] = []
        real_sleep = asyncio.sleep

        async def sleep(delay: float) -> None:
            self.pauses.append(delay)
            await real_sleep(0)

        monkeypatch.setattr(asyncio, "sleep", sleep)

    def answer(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": self.retry_after}, request=request)

    async def send(self, retry_after: str) -> float:
        """One stream, told ``retry_after``; how long it paused before it sent."""
        self.retry_after = retry_after
        self.pauses.clear()
        answer = Stream(
            resolve("openai", base_url=self.base_url, api_key="sk-test"),
            normalize_messages("hi"),
            {},
            transport=httpx.MockTransport(self.answer),
            max_retries=0,
        )
        with pytest.raises(RateLimitError):
            async for _ in answer:
                pass
        return sum(self.pauses)


async def test_a_pause_is_bounded_and_only_ever_a_number_of_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = Endpoint(monkeypatch)
    for nonsense in ("1e999", "inf", "nan", "-5", "0"):
        await endpoint.send(nonsense)
        assert await endpoint.send("0") == 0.0, nonsense  # nothing waits on it
    await endpoint.send("1e9")  # a retry-after of thirty years holds streams a minute at most
    assert 59 < await endpoint.send("0.5") <= 60
    # a shorter pause never shortens a longer one
    assert await endpoint.send("0") > 59
