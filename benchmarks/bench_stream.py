"""Client CPU per streamed chunk: ipyllm against the transport floors and common clients.

The teaching server runs in a separate process on 127.0.0.1 and sends N OpenAI
chat chunks, one HTTP chunk each. Each client's process CPU time (not wall time)
is divided by N. All figures come from one run on one machine: compare the
ratios, not the absolute numbers. Two floors, bytes read and nothing decoded: over
httpx's own transport (anyio), and over ``SocketTransport``, the one ipyllm uses by
default; the other clients use httpx's own.

With ``--rate 0`` (the default) the server sends flat out: a slower client then
finds more chunks per socket read and pays fewer event-loop wake-ups per chunk,
which flatters the slow clients. With a steady ``--rate`` every client reads the
chunks one by one, as from a real model, and the wake-up cost, the same for all,
compresses every ratio towards 1. The README gives both.

    python benchmarks/bench_stream.py [--chunks 20000] [--rate 0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

import ipyllm
import ipyllm.client  # loaded before timing, as a module imported at start-up is
import ipyllm.events  # ipyllm loads its submodules lazily: name the ones used here
import ipyllm.sse

REQUEST = {"model": "demo", "messages": [{"role": "user", "content": "benchmark"}], "stream": True}


@asynccontextmanager
async def chat_response(
    url: str, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[httpx.Response]:
    async with (
        httpx.AsyncClient(timeout=60, transport=transport) as client,
        client.stream("POST", url + "/chat/completions", json=REQUEST) as response,
    ):
        yield response


async def floor_aiter_bytes(url: str, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """The transport floor: bytes off the socket, nothing decoded (httpx's own transport)."""
    size = 0
    async with chat_response(url, transport) as response:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    return size


async def floor_over_sockets(url: str) -> int:
    """The same floor over the transport ipyllm streams over by default."""
    return await floor_aiter_bytes(url, ipyllm.client.SocketTransport(ssl.create_default_context()))


async def with_ipyllm(url: str) -> int:
    text = 0
    async for event in ipyllm.stream("benchmark", provider="openai", base_url=url, model="demo"):
        if isinstance(event, ipyllm.events.TextDelta):
            text += len(event.text)
    return text


async def with_aiter_lines(url: str) -> int:
    """What many tutorials do: line by line, strip 'data: ', json.loads."""
    text = 0
    async with chat_response(url) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    text += len(choice["delta"].get("content") or "")
    return text


async def with_httpx_sse(url: str) -> int:
    from httpx_sse import aconnect_sse

    text = 0
    async with (
        httpx.AsyncClient(timeout=60) as client,
        aconnect_sse(client, "POST", url + "/chat/completions", json=REQUEST) as source,
    ):
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                break
            for choice in json.loads(event.data)["choices"]:
                text += len(choice["delta"].get("content") or "")
    return text


async def with_openai_sdk(url: str) -> int:
    from openai import AsyncOpenAI

    text = 0
    client = AsyncOpenAI(base_url=url, api_key="not-needed", max_retries=0)
    stream = await client.chat.completions.create(
        model="demo", messages=REQUEST["messages"], stream=True
    )
    async for chunk in stream:
        for choice in chunk.choices:
            text += len(choice.delta.content or "")
    await client.close()
    return text


CLIENTS: dict[str, Callable[[str], Awaitable[int]]] = {
    "httpx aiter_bytes (floor)": floor_aiter_bytes,
    "httpx aiter_bytes over ipyllm's SocketTransport (floor)": floor_over_sockets,
    "ipyllm.stream": with_ipyllm,
    "httpx aiter_lines + json.loads": with_aiter_lines,
    "httpx-sse + json.loads": with_httpx_sse,
    "openai SDK": with_openai_sdk,
}


def cpu_seconds(client: Callable[[str], Awaitable[int]], url: str) -> tuple[float, int]:
    started = time.process_time()
    result = asyncio.run(client(url))
    return time.process_time() - started, result


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "ipyllm.server", "--port", "0", "--rate", "0", "--latency", "0",
         "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stdout is not None
    for line in server.stdout:
        if "http://127.0.0.1:" in line:
            start = line.index("http://127.0.0.1:")
            return server, line[start:].split()[0].rstrip("/")
    raise RuntimeError("the teaching server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=0, help="chunks per second, 0 = flat out")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    server, root = start_server()
    url = f"{root}/with/words={args.chunks},rate={args.rate:g},latency=0/v1"
    try:
        chunks = _count_chunks(url)
        results: dict[str, float] = {}
        texts: set[int] = set()
        for name, client in CLIENTS.items():
            best = min(cpu_seconds(client, url) for _ in range(args.repeat))
            results[name] = best[0]
            if "floor" not in name:
                texts.add(best[1])
        assert len(texts) == 1, f"clients disagree on the text length: {texts}"
    finally:
        server.terminate()
        server.wait()
    floor = results["httpx aiter_bytes (floor)"]
    print(
        f"{chunks} chunks at {f'{args.rate:g}/s' if args.rate else 'full speed'} over "
        f"loopback, client CPU, best of {args.repeat}\n"
    )
    print("| client | µs CPU per chunk | × floor | × ipyllm |\n|---|---:|---:|---:|")
    for name, seconds in results.items():
        per_chunk = seconds / chunks * 1e6
        print(
            f"| {name} | {per_chunk:.1f} | {seconds / floor:.2f} | "
            f"{seconds / results['ipyllm.stream']:.2f} |"
        )


def _count_chunks(url: str) -> int:
    """How many SSE events the server sends for this request (the per-chunk denominator)."""

    async def count() -> int:
        events = 0
        decoder = ipyllm.sse.SSEDecoder()
        async with chat_response(url) as response:
            async for chunk in response.aiter_bytes():
                events += len(decoder.feed(chunk))
        return events

    return asyncio.run(count())


if __name__ == "__main__":
    main()
