"""Many answers at once against the teaching server: compare and map, their bounds and Stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ipyllm
from ipyllm import runner
from ipyllm.client import stream
from ipyllm.pricing import answer_cost, format_cost
from ipyllm.server import ServerThread, demo_answer
from ipyllm.transcript import Usage
from ipyllm.views import ColumnsView, ProgressView

from .widgets import Frontend


@pytest.fixture
def teaching() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as running:
        yield running


def target(server: ServerThread, options: str = "", model: str = "demo") -> dict[str, Any]:
    base = f"{server.url}/with/{options}/v1" if options else f"{server.url}/v1"
    return {"provider": "openai", "base_url": base, "model": model, "api_key": "sk-test-many"}


def answer_to(prompt: str, words: int | None = None) -> str:
    return demo_answer([{"role": "user", "content": prompt}], words)


def open_at_once(log: list[dict[str, Any]]) -> int:
    """The most connections the server had open at the same moment, from its log."""
    changes = sorted(
        (record["time"], 1 if record["event"] == "request" else -1)
        for record in log
        if record["event"] in ("request", "complete", "disconnect")
    )
    most = current = 0
    for _, change in changes:
        current += change
        most = max(most, current)
    return most


def ends(log: list[dict[str, Any]], event: str) -> int:
    return sum(1 for record in log if record["event"] == event)


# -- compare ----------------------------------------------------------------------------
def test_compare_streams_every_target_at_once(teaching: ServerThread) -> None:
    prompt = "Explain streaming to a class"
    targets = [
        target(teaching, "rate=40"),
        target(teaching, "rate=40"),
        target(teaching, "rate=40"),
    ]
    result = ipyllm.compare(prompt, *targets)  # no kernel: the terminal path, to the end
    transcripts = [t for t in result.transcripts if t is not None]
    assert [t.status for t in transcripts] == ["done"] * 3
    assert result.texts == [answer_to(prompt)] * 3
    log = teaching.app.log
    assert ends(log, "request") == 3 and open_at_once(log) == 3
    firsts = [t.first_token_at for t in transcripts if t.first_token_at is not None]
    assert len(firsts) == 3 and max(firsts) - min(firsts) < 0.05  # within one frame


def test_compare_targets_name_provider_and_model() -> None:
    result = ipyllm.compare("hi", "demo:demo-reasoning", "demo", {"provider": "demo"})
    assert [(t.provider, t.model) for t in result.transcripts] == [
        ("demo", "demo-reasoning"),
        ("demo", "demo"),
        ("demo", "demo"),
    ]
    # Ollama's name:tag is one model, not a provider and a model
    ollama = ipyllm.compare("hi", "llama3.2:1b", provider="demo")
    assert ollama.transcripts[0].model == "llama3.2:1b"
    with pytest.raises(ipyllm.ConfigurationError, match="unknown provider"):
        ipyllm.compare("hi", {"provider": "nonesuch"})


async def test_stop_all_and_a_columns_own_stop(teaching: ServerThread, frontend: Frontend) -> None:
    prompt = "Tell me about streams"
    slow = [target(teaching, f"rate=20,seed={n}") for n in range(3)]
    streams = [stream(prompt, **options) for options in slow]
    view = ColumnsView(["a", "b", "c"])
    batch = runner.start_batch(3, streams.__getitem__, view, 3)
    await asyncio.sleep(0.6)
    stops = frontend.find(view, "ipyllm-stop")
    assert len(stops) == 3
    frontend.click(stops[1])  # column b only
    await asyncio.to_thread(teaching.app.wait_for, lambda r: r["event"] == "disconnect", 5)
    await asyncio.sleep(0.3)
    states = [t.status if t else None for t in batch.transcripts]
    assert states == ["streaming", "stopped", "streaming"]
    frontend.click(frontend.one(view, "ipyllm-stop-all"))
    transcripts = await batch
    assert [t.status for t in transcripts] == ["stopped", "stopped", "stopped"]
    await asyncio.sleep(0.3)
    log = teaching.app.log
    assert ends(log, "disconnect") == 3 and ends(log, "complete") == 0
    for transcript in transcripts:  # each kept exactly what it had shown
        assert transcript.text and answer_to(prompt).startswith(transcript.text)


# -- map --------------------------------------------------------------------------------
def test_map_two_hundred_rows_in_order_within_the_concurrency(
    teaching: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"row {n}" for n in range(200)]
    started = time.monotonic()
    result = ipyllm.map(
        "Repeat after me: {item}",
        rows,
        concurrency=16,
        **target(teaching, "words=20,latency=0.05,status=429,retry_after=1,times=30"),
    )
    seconds = time.monotonic() - started
    transcripts = [t for t in result.transcripts if t is not None]
    assert [t.status for t in transcripts] == ["done"] * 200
    for row, transcript in zip(rows, transcripts, strict=True):
        assert transcript.text == answer_to(f"Repeat after me: {row}", 20)
    log = teaching.app.log
    assert open_at_once(log) <= 16
    answered = [r for r in log if r["event"] == "complete" and r["status"] == 200]
    refused = [r for r in log if r["event"] == "complete" and r["status"] == 429]
    assert len(answered) == 200 and len(refused) == 30
    # The first 30 requests were refused with retry-after 1 s, and every stream to the
    # server waits out each pause: the first 16 refused, their retries plus 14 more
    # refused, then all through. About two pauses, plus the rows themselves (~1.5 s).
    assert 2.0 <= seconds < 6, seconds
    assert "row 199" in capsys.readouterr().out


def test_map_rows_may_ask_for_whole_answers(teaching: ServerThread) -> None:
    """params={"stream": False}: the same rows, answers and usage, each read whole."""
    rows = [f"row {n}" for n in range(40)]
    result = ipyllm.map(
        "Say it whole: {item}",
        rows,
        concurrency=8,
        params={"stream": False},
        **target(teaching, "words=20"),
    )
    transcripts = [t for t in result.transcripts if t is not None]
    assert [t.status for t in transcripts] == ["done"] * 40
    for row, transcript in zip(rows, transcripts, strict=True):
        assert transcript.text == answer_to(f"Say it whole: {row}", 20)
        assert transcript.usage is not None and transcript.delta_count == 1
    assert open_at_once(teaching.app.log) <= 8


async def test_map_stop_keeps_finished_rows_and_leaves_nothing_open(
    teaching: ServerThread, frontend: Frontend
) -> None:
    rows = list(range(40))
    options = target(teaching, "rate=30,words=20")
    view = ProgressView("test map")
    batch = runner.start_batch(
        len(rows), lambda i: stream(f"Say {rows[i]}", **options), view, concurrency=4
    )
    while sum(1 for t in batch.transcripts if t is not None and t.status == "done") < 5:
        await asyncio.sleep(0.05)
    batch.stop()
    transcripts = await batch
    states = [t.status for t in transcripts]
    assert states.count("done") >= 5 and "streaming" not in states and "pending" not in states
    assert len(transcripts) == 40  # queued rows end "stopped", never sent
    for index, transcript in enumerate(transcripts):
        if transcript.status == "done":
            assert transcript.text == answer_to(f"Say {rows[index]}", 20)
    await asyncio.sleep(0.3)
    log = teaching.app.log
    assert ends(log, "request") == ends(log, "complete") + ends(log, "disconnect")
    assert ends(log, "request") < 40  # the queued rows were never sent
    assert "done" in frontend.value(view, "ipyllm-map-panel")


async def test_a_thousand_row_map_sends_at_most_twenty_widget_messages_a_second(
    teaching: ServerThread, frontend: Frontend
) -> None:
    options = target(teaching)
    view = ProgressView("a thousand rows")
    await asyncio.sleep(0)
    started = time.monotonic()
    batch = runner.start_batch(1000, lambda i: stream(f"Row {i}", **options), view, concurrency=32)
    transcripts = await batch
    assert [t.status for t in transcripts] == ["done"] * 1000
    per_second: dict[int, int] = {}
    for at, kind, _, _ in frontend.log:
        if kind in ("comm_open", "comm_msg") and at >= started:
            per_second[int(at - started)] = per_second.get(int(at - started), 0) + 1
    assert max(per_second.values()) <= 20, per_second
    final = frontend.value(view, "ipyllm-map-panel")
    assert "1000 done" in final and "0 failed" in final  # the final state arrived


def test_a_rerun_with_recording_sends_only_the_rows_not_yet_answered(
    teaching: ServerThread, tmp_path: Path
) -> None:
    store = str(tmp_path / "store.sqlite3")
    options = {**target(teaching), "record": True, "store": store}
    first = ipyllm.map("Number {item}", [1, 2, 3], **options)
    assert all(t is not None and t.status == "done" for t in first.transcripts)
    sent = ends(teaching.app.log, "request")
    second = ipyllm.map("Number {item}", [1, 2, 3, 4, 5], **options)
    assert [t.text for t in second.transcripts if t] == [
        answer_to(f"Number {n}") for n in range(1, 6)
    ]
    assert ends(teaching.app.log, "request") == sent + 2  # only rows 4 and 5


def test_to_frame_columns_and_types(teaching: ServerThread) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"city": ["Paris", "Lima"], "n": [1, 2]})
    result = ipyllm.map("Tell me about {city} ({n})", frame, **target(teaching))
    table = result.to_frame()
    assert list(table.columns) == [
        "city", "n", "answer", "status", "finish_reason",
        "input_tokens", "output_tokens", "cost", "error",
    ]  # fmt: skip
    assert str(table["answer"].dtype) == "string" and str(table["input_tokens"].dtype) == "Int64"
    assert str(table["cost"].dtype) == "Float64"
    assert table["answer"][1] == answer_to("Tell me about Lima (2)")
    assert table["status"].tolist() == ["done", "done"]
    assert table["cost"].tolist() == [0.0, 0.0]  # a server on this machine costs nothing


# -- cost -------------------------------------------------------------------------------
def test_cost_matches_genai_prices_and_says_when_unknown() -> None:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    usage = Usage(input_tokens=1200, output_tokens=340)
    counted = PriceUsage(input_tokens=1200, output_tokens=340)
    expected = float(calc_price(counted, "gpt-4o-mini", provider_id="openai").total_price)
    assert answer_cost("openai", "gpt-4o-mini", usage) == pytest.approx(expected)
    assert answer_cost("demo", "demo", usage) == 0.0
    assert answer_cost("openai", "llama", usage, base_url="http://127.0.0.1:8080/v1") == 0.0
    assert answer_cost("openai", "no-such-model-anywhere", usage) is None
    assert answer_cost("openai", "gpt-4o-mini", None) is None
    mine = {"my-model": {"input": 1.0, "output": 2.0}}
    assert answer_cost("openai", "my-model", usage, prices=mine) == pytest.approx(
        (1200 * 1.0 + 340 * 2.0) / 1e6
    )
    assert format_cost(None) == "cost unknown" and format_cost(0.0) == "free"


async def test_a_429_with_retry_after_pauses_every_stream_to_that_server(
    teaching: ServerThread,
) -> None:
    options = target(teaching, "status=429,retry_after=1,times=1,rate=0")
    first = stream("First", **options)
    first_task = asyncio.ensure_future(_drain(first))
    refused = await asyncio.to_thread(teaching.app.wait_for, lambda r: r["status"] == 429, 5)
    assert refused is not None
    while first.transcript.retries == 0:  # the client has read the 429 and will wait
        await asyncio.sleep(0.01)
    second = await _drain(stream("Second", **options))  # told nothing itself, it waits too
    await first_task
    assert first.transcript.status == "done" and second.status == "done"
    requests = [r for r in teaching.app.log if r["event"] == "request"]
    assert len(requests) == 3  # the refused one, its retry, and the second stream's
    assert min(r["time"] for r in requests[1:]) - refused["time"] >= 0.9


async def _drain(answer: ipyllm.Stream) -> ipyllm.Transcript:
    async for _ in answer:
        pass
    return answer.transcript


async def test_a_batch_shares_its_clients_and_closes_them_at_the_end() -> None:
    import httpx

    from ipyllm.client import shared_client, shared_connections

    timeout = httpx.Timeout(10.0)
    assert shared_client(timeout) is None  # outside a batch, every stream has its own
    async with shared_connections():
        first = shared_client(timeout)
        assert first is not None and shared_client(timeout) is first
        assert shared_client(httpx.Timeout(3.0)) is not first  # other timeouts, other client
    assert first.is_closed and shared_client(timeout) is None
