"""The fault matrix: every dialect x every fault x every stage, over real HTTP.

Each cell sends one request to the teaching server with a fault in its URL options,
shows the stream in a ChatView (as %%chat does) and records how it ended. What each
cell *should* do is worked out independently of ipyllm's decoders: from the demo
model's tokens (faults counted in tokens cut the answer after exactly N of them) and
from the raw bytes of a clean reference answer split into wire events by hand (faults
counted in bytes keep exactly the events that arrived whole). The same outcomes are
written to docs/fault-matrix.md by ``benchmarks/fault_matrix.py``; a test checks that
the document is current.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import ipyllm
from ipyllm import ChatView, render_markdown
from ipyllm.dialects import get_dialect
from ipyllm.server import ServerThread, demo_answer, demo_tokens

from .conftest import base_url_for
from .widgets import Frontend, recording

DIALECTS = ["openai", "openai-completions", "openai-responses", "anthropic", "ollama", "gemini"]
QUESTION = "Why is the sky blue?"
MESSAGES = [{"role": "user", "content": QUESTION}]
WORDS = 20  # a short answer (about 30 tokens) keeps each cell fast
PACING = f"rate=0,latency=0,words={WORDS}"
STALL_TIMEOUT = 0.5  # the client gives up on a stalled stream after this long
CONCURRENCY = 16  # cells in flight at once: retries and stalls wait, most cells take ms
DOC = Path(__file__).resolve().parents[1] / "docs" / "fault-matrix.md"

START, FIRST, END = "before the first token", "after the first token", "near the end"
STAGES = (START, FIRST, END)
RETRYABLE = (408, 429, 500, 502, 503, 529)
NOT_RETRYABLE = (400, 401, 403, 404)


# -- the cells ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    stages: tuple[str, ...]
    note: str  # why it applies (or not) at each stage, for the document


FAULTS = [
    *(
        Fault(f"HTTP {s}", (START,), "a status arrives in the response head, never mid-body")
        for s in NOT_RETRYABLE
    ),
    *(
        Fault(f"HTTP {s} once", (START,), "retried only before the first byte, by design")
        for s in RETRYABLE
    ),
    *(
        Fault(f"HTTP {s} always", (START,), "retried once (max_retries=1), then given up")
        for s in RETRYABLE
    ),
    Fault("HTML page (200)", (START,), "a captive portal replaces the whole answer"),
    Fault("HTML page (502)", (START,), "a proxy's error page replaces the whole answer"),
    Fault("empty body (200)", (START,), "an empty body replaces the whole answer"),
    Fault("empty body (500)", (START,), "an error status with nothing in its body"),
    Fault("drop after N bytes", STAGES, "the connection is cut in the middle of an event"),
    Fault("drop after N tokens", STAGES, "the connection is cut between two events"),
    Fault("stall", STAGES, "the server stops sending and keeps the connection open"),
    Fault("malformed JSON", STAGES, "one event's JSON is cut short"),
    Fault("error event", STAGES, "the provider's own in-stream error, then the end"),
    Fault("missing finish", (END,), "cut after the last token, before the finish event"),
    Fault("missing end marker", (END,), "cut exactly before the last event"),
]


@dataclass(frozen=True)
class Cell:
    dialect: str
    fault: str
    stage: str

    @property
    def id(self) -> str:
        return f"{self.dialect}|{self.fault}|{self.stage}"


CELLS = [Cell(d, f.name, s) for f in FAULTS for s in f.stages for d in DIALECTS]


# -- what the server sends, read independently of ipyllm's decoders ---------------------------


@dataclass
class WireEvent:
    end: int  # offset just past the event's terminator in the body
    text: str  # the answer text it carries
    finishes: bool  # it carries the finish reason (or is the end marker after one)


def _split_events(dialect: str, body: bytes) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) of each wire event: SSE blocks or NDJSON lines."""
    separator = re.compile(rb"\n" if dialect == "ollama" else rb"\r?\n\r?\n")
    start = 0
    for match in separator.finditer(body):
        yield match.end(), body[start : match.start()]
        start = match.end()


def _payload(block: bytes) -> Any:
    lines = block.decode().splitlines()
    data = [line[5:].lstrip(" ") for line in lines if line.startswith("data:")]
    text = "\n".join(data) if data else block.decode()
    return None if text == "[DONE]" else json.loads(text)


def _meaning(dialect: str, obj: Any) -> tuple[str, bool]:
    """(text, carries the finish) of one event, read straight from the provider's shape."""
    if obj is None:  # OpenAI's [DONE]
        return "", False
    if dialect in ("openai", "openai-completions"):
        choice = (obj.get("choices") or [{}])[0]
        text = (
            choice.get("text")
            if dialect == "openai-completions"
            else (choice.get("delta", {}).get("content"))
        )
        return text or "", bool(choice.get("finish_reason"))
    if dialect == "openai-responses":
        if obj["type"] == "response.output_text.delta":
            return obj["delta"], False
        return "", obj["type"] == "response.completed"
    if dialect == "anthropic":
        delta = obj.get("delta", {})
        if obj["type"] == "content_block_delta" and delta.get("type") == "text_delta":
            return delta["text"], False
        return "", obj["type"] == "message_delta" and bool(delta.get("stop_reason"))
    if dialect == "ollama":
        return obj.get("message", {}).get("content", ""), obj.get("done") is True
    candidate = obj["candidates"][0]  # gemini
    text = "".join(part.get("text", "") for part in candidate["content"]["parts"])
    return text, bool(candidate.get("finishReason"))


async def reference_events(server_url: str, dialect: str) -> list[WireEvent]:
    """A clean answer's wire events, fetched as raw bytes over HTTP."""
    spec = get_dialect(dialect).build_request(
        MESSAGES,
        model="demo",
        params={},
        api_key="k",
        base_url=base_url_for(server_url, dialect, PACING),
    )
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.request(spec.method, spec.url, headers=spec.headers, json=spec.json)
    body = response.content
    events = []
    for end, block in _split_events(dialect, body):
        text, finishes = _meaning(dialect, _payload(block))
        events.append(WireEvent(end, text, finishes))
    assert events[-1].end == len(body), "the body ends with a whole event"
    return events


# -- expectations ------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str  # the transcript's: done or error
    error: str | None  # the StreamError subclass, by name
    text: str
    retries: int
    requests: int  # as the server logged them
    status_code: int | None = None


@dataclass
class Plan:
    """How to run one cell, and what it must give."""

    options: str
    expected: Outcome
    client: dict[str, Any] = field(default_factory=dict)


def _tokens() -> list[str]:
    return demo_tokens(demo_answer(MESSAGES, words=WORDS))


def _token_stage(stage: str) -> int:
    """How many tokens are sent before a fault counted in tokens."""
    return {START: 0, FIRST: 1, END: len(_tokens()) - 1}[stage]


def _byte_cut(stage: str, events: list[WireEvent], fault: str) -> int:
    if fault == "missing end marker":
        return events[-2].end  # everything but the last event
    if stage == START:
        return 0  # the head arrives, then not one byte of the body
    if stage == FIRST:
        first = next(i for i, e in enumerate(events) if e.text)
        after = events[first + 1]
        return (events[first].end + after.end) // 2  # halfway through the event after it
    return (events[-2].end + events[-1].end) // 2  # halfway through the last event


def plan(cell: Cell, number: int, events: list[WireEvent]) -> Plan:
    """The options for a cell and its outcome, from the tokens and the reference bytes."""
    tokens = _tokens()
    full = "".join(tokens)
    # seed= changes nothing here but makes each option string unique, so times= counts per cell.
    base = f"{PACING},seed={number}"
    fault = cell.fault
    if fault.startswith("HTTP "):
        status = int(fault.split()[1])
        if fault.endswith(" once"):
            extra = ",retry_after=0.1" if status == 429 else ""
            return Plan(f"{base},status={status}{extra},times=1", Outcome("done", None, full, 1, 2))
        kind = {401: "AuthenticationError", 403: "AuthenticationError", 429: "RateLimitError"}
        retried = status in RETRYABLE  # max_retries=1: one retry allowed, used only if retryable
        return Plan(
            f"{base},status={status}" + (",retry_after=0.1" if status == 429 else ""),
            Outcome(
                "error",
                kind.get(status, "HTTPStatusError"),
                "",
                int(retried),
                1 + int(retried),
                status,
            ),
            {"max_retries": 1},
        )
    if fault.startswith(("HTML page", "empty body")):
        body = "html" if fault.startswith("HTML") else "empty"
        if "(200)" in fault:
            return Plan(f"{base},{body}=1", Outcome("error", "ProtocolError", "", 0, 1))
        status = 502 if body == "html" else 500
        return Plan(
            f"{base},status={status},body={body}",
            Outcome("error", "HTTPStatusError", "", 0, 1, status),
            {"max_retries": 0},
        )
    if fault in ("drop after N bytes", "missing end marker"):
        cut = _byte_cut(cell.stage, events, fault)
        whole = [e for e in events if e.end <= cut]  # the decoder dispatches only whole events
        text = "".join(e.text for e in whole)
        finished = any(e.finishes for e in whole)
        if finished:  # the finish arrived whole: nothing is missing but an end marker
            outcome = Outcome("done", None, text, 0, 1)
        else:
            outcome = Outcome("error", "TruncatedError", text, 0, 1)
        return Plan(f"{base},drop_after_bytes={cut}", outcome)
    sent = len(tokens) if fault == "missing finish" else _token_stage(cell.stage)
    option, error = {
        "drop after N tokens": ("drop_after", "TruncatedError"),
        "missing finish": ("drop_after", "TruncatedError"),
        "stall": ("stall_after", "StalledError"),
        "malformed JSON": ("malformed_after", "ProtocolError"),
        "error event": ("error_after", "ProviderError"),
    }[fault]
    options = f"{base},{option}={sent}" + (",stall=30" if fault == "stall" else "")
    client = {"stall_timeout": STALL_TIMEOUT} if fault == "stall" else {}
    return Plan(options, Outcome("error", error, "".join(tokens[:sent]), 0, 1), client)


# -- running the matrix -----------------------------------------------------------------------


@dataclass
class Result:
    cell: Cell
    plan: Plan
    outcome: Outcome
    message: str
    view: dict[str, Any]  # the ChatView's final state, as a frontend holds it


async def run_cell(server: ServerThread, frontend: Frontend, cell: Cell, cell_plan: Plan) -> Result:
    answer = ipyllm.stream(
        QUESTION,
        provider=cell.dialect,
        model="demo",
        base_url=base_url_for(server.url, cell.dialect, cell_plan.options),
        api_key="sk-fault-matrix-key",
        **cell_plan.client,
    )
    view = ChatView()
    transcript = await asyncio.wait_for(view.stream(answer), timeout=30)
    error = transcript.error
    marker = f"/with/{cell_plan.options}/"
    requests = sum(
        1 for r in server.app.log if r["event"] == "request" and marker in r["path"] + "/"
    )
    outcome = Outcome(
        transcript.status,
        None if error is None else type(error).__name__,
        transcript.text,
        transcript.retries,
        requests,
        getattr(error, "status_code", None),
    )
    state = {
        "status": frontend.value(view, "ipyllm-status-line"),
        "stop_disabled": frontend.state(frontend.one(view, "ipyllm-stop"))["disabled"],
        "extras": frontend.value(view, "ipyllm-extras"),
        "body": frontend.shown_body(view),
        "error_keeps_transcript": error is None or error.transcript is transcript,
    }
    view.close_all_children()
    return Result(cell, cell_plan, outcome, "" if error is None else str(error), state)


async def run_matrix(server: ServerThread, cells: list[Cell] = CELLS) -> list[Result]:
    references = {d: await reference_events(server.url, d) for d in DIALECTS}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(frontend: Frontend, number: int, cell: Cell) -> Result:
        async with gate:
            cell_plan = plan(cell, number, references[cell.dialect])
            return await run_cell(server, frontend, cell, cell_plan)

    with recording() as frontend:  # one recording: the cells' views share a frontend
        return list(await asyncio.gather(*(one(frontend, n, c) for n, c in enumerate(cells))))


def describe(outcome: Outcome, full: int) -> str:
    """A table cell: what happened, in a few words."""
    kept = f"{len(outcome.text)}/{full} chars"
    if outcome.status == "done":
        if outcome.retries:
            return f"✅ recovered after {outcome.retries} retry"
        return f"✅ done ({kept})"
    if outcome.status_code is not None:  # refused before any byte of an answer
        retried = f", {outcome.retries} retry" if outcome.retries else ""
        return f"`{outcome.error}` {outcome.status_code}{retried}"
    return f"`{outcome.error}`, kept {kept}"


def table(results: list[Result]) -> str:
    """The markdown table: a row per fault and stage, a column per dialect."""
    full = len(demo_answer(MESSAGES, words=WORDS))
    by_cell = {r.cell: r for r in results}
    lines = [
        "| fault | stage | " + " | ".join(DIALECTS) + " |",
        "|---|---|" + "---|" * len(DIALECTS),
    ]
    for fault in FAULTS:
        for stage in fault.stages:
            outcomes = [
                describe(by_cell[Cell(d, fault.name, stage)].outcome, full) for d in DIALECTS
            ]
            lines.append(f"| {fault.name} | {stage} | " + " | ".join(outcomes) + " |")
    return "\n".join(lines) + "\n"


# -- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix() -> Iterator[dict[str, Result]]:
    with ServerThread(token_rate=0, first_token_latency=0) as server:
        results = asyncio.run(asyncio.wait_for(run_matrix(server), timeout=90))
    yield {r.cell.id: r for r in results}


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_each_fault_ends_as_expected_in_each_dialect(matrix: dict[str, Result], cell: Cell) -> None:
    result = matrix[cell.id]
    expected, got = result.plan.expected, result.outcome
    # Field by field, so a failure says what differs.
    assert (got.status, got.error, got.status_code) == (
        expected.status,
        expected.error,
        expected.status_code,
    ), result.message
    assert got.text == expected.text, "the text kept is exactly the text the server sent"
    assert (got.retries, got.requests) == (expected.retries, expected.requests)
    view = result.view
    word = "done" if expected.status == "done" else "failed"
    assert f"ipyllm-state-{expected.status}" in view["status"] and word in view["status"]
    assert view["stop_disabled"], "the Stop button is disabled once the stream ended"
    assert view["body"] == render_markdown(expected.text), "the view shows what was kept"
    if expected.status == "error":
        assert html.escape(f"Error: {result.message}") in view["extras"]
        assert view["error_keeps_transcript"]
        assert "sk-fault-matrix-key" not in result.message
    else:
        assert "ipyllm-error" not in view["extras"]


def test_the_reference_answers_are_the_demo_answer() -> None:
    """The hand-written wire reader agrees with the demo model, so the expectations hold."""

    async def fetch() -> dict[str, str]:
        with ServerThread(token_rate=0, first_token_latency=0) as server:
            return {
                d: "".join(e.text for e in await reference_events(server.url, d)) for d in DIALECTS
            }

    texts = asyncio.run(fetch())
    assert texts == {d: demo_answer(MESSAGES, words=WORDS) for d in DIALECTS}


def test_the_document_is_current(matrix: dict[str, Result]) -> None:
    assert DOC.exists(), "run python benchmarks/fault_matrix.py"
    assert table(list(matrix.values())) in DOC.read_text(), (
        "docs/fault-matrix.md is out of date: run python benchmarks/fault_matrix.py"
    )
