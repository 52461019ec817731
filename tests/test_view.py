"""ChatView without a kernel: the widget messages it would send, recorded as sent.

ipywidgets sends through ``comm.create_comm``, which is meant to be replaced; the
``frontend`` fixture (tests/widgets.py) records every message and rebuilds what a
frontend would hold, so tests see exactly what a frontend would receive and click
as a browser does. The kernel tests (test_magic_kernel.py) cover the same view over
a real kernel.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import ipyllm
from ipyllm import ChatView, ProviderError, render_markdown
from ipyllm.events import Finish, RawEvent, ReasoningDelta, TextDelta, ToolCallDelta

from .safety import PAYLOADS, violations
from .widgets import Frontend

FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"


async def deltas(pieces: list[str], interval: float) -> AsyncIterator[str]:
    for piece in pieces:
        await asyncio.sleep(interval)
        yield piece


ANSWER = "\n\n".join(
    f"## Part {n}\n\nSome *text* with `code` and a list:\n\n- one\n- two\n" for n in range(12)
)


LONG_ANSWER = "\n\n".join(
    f"## Part {n}\n\nSome *text* with `code`, a [link](https://example.org/{n}) and a list:"
    "\n\n- one\n- two\n  - nested, with $x^2$ math\n"
    for n in range(60)
)


def messages_per_second(frontend: Frontend, started: float) -> dict[int, int]:
    """Every widget message the view sent (opens and updates), counted per second."""
    per_second: dict[int, int] = {}
    for at, kind, _, _ in frontend.log:
        if kind in ("comm_open", "comm_msg") and at >= started:
            per_second[int(at - started)] = per_second.get(int(at - started), 0) + 1
    return per_second


async def test_fed_a_thousand_deltas_a_second_it_sends_at_most_twenty_messages_a_second(
    frontend: Frontend,
) -> None:
    view = ChatView()
    pieces = [LONG_ANSWER[i : i + 2] for i in range(0, len(LONG_ANSWER), 2)]
    await asyncio.sleep(0)  # the view's own widgets are opened before the clock starts
    started = time.monotonic()
    transcript = await view.stream(deltas(pieces, 0.001))
    seconds = time.monotonic() - started
    assert transcript.text == LONG_ANSWER
    assert len(pieces) / seconds > 300  # the source really was fast
    assert seconds > 2  # long enough for whole seconds to count
    per_second = messages_per_second(frontend, started)
    # Every message counts (tail, sealed segments, status, extras), not only frames;
    # the final frame, always sent, may add its few messages to the last second.
    whole_seconds = [count for second, count in per_second.items() if second < int(seconds)]
    assert whole_seconds and max(whole_seconds) <= 20, per_second
    frames = frontend.values_sent(frontend.one(view, "ipyllm-tail"))
    assert len(frames) >= seconds * 8  # and the text still moves: a frame is one or two messages
    assert frontend.shown_body(view) == render_markdown(LONG_ANSWER)  # the final state arrived


async def test_the_first_delta_is_drawn_at_once(frontend: Frontend) -> None:
    view = ChatView()

    async def slow() -> AsyncIterator[str]:
        yield "Hello"
        await asyncio.sleep(0.3)
        yield " world"

    task = view.start(slow())
    await asyncio.sleep(0.05)
    (first, *_) = frontend.values_sent(frontend.one(view, "ipyllm-tail"))
    assert "Hello" in first[1]
    await task
    assert frontend.shown_body(view) == render_markdown("Hello world")


async def test_frozen_segments_are_sent_while_they_fill_and_bytes_stay_small(
    frontend: Frontend,
) -> None:
    view = ChatView()
    pieces = [LONG_ANSWER[i : i + 3] for i in range(0, len(LONG_ANSWER), 3)]
    await view.stream(deltas(pieces, 0.0005))
    body_bytes = sum(
        len(json.dumps(data)) for _, kind, _, data in frontend.log if kind == "comm_msg"
    )
    naive = sum(len(render_markdown(LONG_ANSWER[: i + 3])) for i in range(0, len(LONG_ANSWER), 3))
    assert body_bytes * 10 < naive  # far below re-sending the whole HTML per delta
    segments = frontend.find(view, "ipyllm-blocks-segment")
    assert len(segments) >= 2
    for segment in segments:  # a segment is sent while it fills, not again and again
        assert len(frontend.values_sent(segment)) < 40
        assert frontend.state(segment)["value"]
    assert frontend.shown_body(view) == render_markdown(LONG_ANSWER)


@pytest.mark.parametrize("moment", ["before the first token", "mid-stream", "after the end"])
async def test_stop_leaves_a_consistent_labelled_state(frontend: Frontend, moment: str) -> None:
    view = ChatView()
    yielded: list[str] = []

    async def source() -> AsyncIterator[str]:
        if moment == "before the first token":
            await asyncio.sleep(30)
        for word in ANSWER.split(" "):
            yielded.append(word + " ")
            yield word + " "
            await asyncio.sleep(0.001 if moment == "after the end" else 0.01)

    task = view.start(source())
    if moment == "after the end":
        await task
    else:
        await asyncio.sleep(0.2)
    stop_button = frontend.one(view, "ipyllm-stop")
    frontend.click(stop_button)  # the message a browser sends when Stop is clicked
    transcript = await task
    assert transcript.text == "".join(yielded)
    expected = "done" if moment == "after the end" else "stopped"
    assert transcript.status == expected
    assert frontend.state(stop_button)["disabled"]
    status = frontend.value(view, "ipyllm-status-line")
    assert expected in status
    assert frontend.shown_body(view) == render_markdown(transcript.text)
    if moment == "before the first token":
        assert transcript.text == "" and "partial answer kept" in status


async def test_an_error_keeps_the_partial_answer_above_the_message(frontend: Frontend) -> None:
    view = ChatView()

    async def failing() -> AsyncIterator[str]:
        yield "Half an "
        yield "answer"
        raise ProviderError("the model crashed")

    transcript = await view.stream(failing())
    assert transcript.status == "error" and transcript.text == "Half an answer"
    assert "the model crashed" in frontend.value(view, "ipyllm-extras")
    assert "failed" in frontend.value(view, "ipyllm-status-line")
    assert frontend.shown_body(view) == render_markdown("Half an answer")


async def test_an_ipyllm_stream_keeps_its_own_transcript(frontend: Frontend) -> None:
    view = ChatView(events=True)
    answer = ipyllm.stream("Hello", provider="demo", base_url=FAST_DEMO, raw=True)
    transcript = await view.stream(answer)
    assert transcript is answer.transcript and transcript.status == "done"
    assert frontend.shown_body(view) == render_markdown(transcript.text)
    raw_panel = frontend.joined(frontend.one(view, "ipyllm-raw"), "ipyllm-raw-segment")
    assert "[DONE]" in raw_panel and "chat.completion.chunk" in raw_panel


async def test_reasoning_tool_calls_and_finish_are_shown(frontend: Frontend) -> None:
    view = ChatView()

    async def source() -> AsyncIterator[Any]:
        yield ReasoningDelta("Let me <think>")
        yield TextDelta("Calling a tool.")
        yield ToolCallDelta(index=0, id="call_1", name="get_weather", arguments='{"city": ')
        yield ToolCallDelta(index=0, arguments='"Paris"}')
        yield Finish("length")
        yield RawEvent("ignored without events=True", None, 0.0)

    transcript = await view.stream(source())
    assert transcript.reasoning == "Let me <think>"
    reasoning = frontend.joined(frontend.one(view, "ipyllm-reasoning"), "ipyllm-reasoning-segment")
    assert "Let me &lt;think&gt;" in reasoning
    toggle = frontend.one(view, "ipyllm-reasoning-toggle")
    assert frontend.layout(toggle)["display"] != "none"
    extras = frontend.value(view, "ipyllm-extras")
    assert "get_weather" in extras and "&quot;city&quot;: &quot;Paris&quot;" in extras
    assert "cut off by the max tokens limit" in frontend.value(view, "ipyllm-status-line")


async def test_plain_text_format_shows_text_as_typed(frontend: Frontend) -> None:
    view = ChatView(format="text")
    text = "<b>not bold</b>\n  indented\n\n**not markdown**"
    await view.stream(deltas(list(text), 0))
    shown = frontend.shown_body(view)
    assert "&lt;b&gt;not bold&lt;/b&gt;" in shown and "<strong>" not in shown
    assert "  indented" in shown


@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_hostile_output_never_reaches_a_widget_unsanitized(
    frontend: Frontend, name: str
) -> None:
    view = ChatView()
    payload = PAYLOADS[name]
    await view.stream(deltas([payload[i : i + 3] for i in range(0, len(payload), 3)], 0))
    for value in frontend.body_values_sent(view):
        assert not violations(value), (name, value)


async def test_sdk_objects_are_shown_like_their_wire_form(frontend: Frontend) -> None:
    chunk_types = pytest.importorskip("openai.types.chat")
    messages = pytest.importorskip("langchain_core.messages")
    openai_chunks = [
        chunk_types.ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
        )
        for text in ("Hello", " from", " the SDK")
    ]

    async def source(items: list[Any]) -> AsyncIterator[Any]:
        for item in items:
            yield item

    transcript = await ChatView().stream(source(openai_chunks))
    assert transcript.text == "Hello from the SDK"
    lang_chunks = [messages.AIMessageChunk(content=t) for t in ("Lang", "Chain")]
    transcript = await ChatView().stream(source(lang_chunks))
    assert transcript.text == "LangChain"
    transcript = await ChatView().stream(source([object()]))
    assert transcript.status == "error" and "cannot show a object" in str(transcript.error)


def test_the_static_copy_keeps_a_height_limit_but_only_a_css_length() -> None:
    from ipyllm import Transcript
    from ipyllm.render import static_bundle

    transcript = Transcript(provider="demo", model="demo")
    transcript.start()
    transcript.end("done")
    limited, _ = static_bundle(transcript, "<p>x</p>", "", max_height="12em")
    assert 'style="max-height: 12em; overflow: auto"' in limited["text/html"]
    hostile, _ = static_bundle(transcript, "<p>x</p>", "", max_height="1px;background:url(x)")
    assert "style=" not in hostile["text/html"]


async def test_a_stop_reads_neutral_and_an_open_events_panel_stays_open(
    frontend: Frontend,
) -> None:
    view = ChatView(events=True)

    async def source() -> AsyncIterator[Any]:
        yield RawEvent('{"delta": "Half"}', None, 0.01)
        yield TextDelta("Half")
        await asyncio.sleep(30)

    task = view.start(source())
    await asyncio.sleep(0.1)
    view.stop()
    transcript = await task
    assert transcript.status == "stopped"
    extras = frontend.value(view, "ipyllm-extras")
    assert 'class="ipyllm-stopped"' in extras and "ipyllm-error" not in extras
    data, _ = view.static_copy()
    assert 'class="ipyllm-stopped"' in data["text/html"]
    assert 'class="ipyllm-error"' not in data["text/html"]
    assert "<details class='ipyllm-wire' open>" in data["text/html"]
    assert "ipyllm-raw-scroll" in data["text/html"]
    # ...and an error still reads as one
    failed = ChatView()

    async def failing() -> AsyncIterator[str]:
        yield "x"
        raise ProviderError("boom")

    await failed.stream(failing())
    assert 'class="ipyllm-error"' in frontend.value(failed, "ipyllm-extras")


async def test_a_copy_taken_mid_answer_says_it_is_the_answer_so_far(frontend: Frontend) -> None:
    """What a reopened notebook shows after the kernel restarted, for an answer saved while
    it streamed: the text so far and a note saying so; the final copy has no such note."""
    from ipyllm.render import PARTIAL_COPY_NOTE

    view = ChatView()
    release = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        yield "The first half"
        await release.wait()
        yield ", and the end."

    task = view.start(source())
    await asyncio.sleep(0.1)
    mid, metadata = view.static_copy()
    assert metadata["ipyllm"]["status"] == "streaming"
    assert PARTIAL_COPY_NOTE not in frontend.value(view, "ipyllm-extras")  # the live view
    assert mid["text/plain"].endswith("The first half\n\n" + PARTIAL_COPY_NOTE)
    assert f'<div class="ipyllm-stopped">{PARTIAL_COPY_NOTE}</div>' in mid["text/html"]
    assert PARTIAL_COPY_NOTE in mid["text/markdown"]
    release.set()
    await task
    final, _ = view.static_copy()
    assert final["text/plain"].endswith("The first half, and the end.")
    assert PARTIAL_COPY_NOTE not in final["text/html"] + final["text/markdown"]
