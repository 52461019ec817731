"""Fuzzing the path from wire bytes to the transcript, with hypothesis.

Model output and the servers in between are untrusted: whatever bytes, JSON or
chunk shapes arrive, ipyllm must end with its own typed errors (never a KeyError,
TypeError, AttributeError, JSONDecodeError or RecursionError), never hang, and
never lose text it already handed out: the TextDelta events a caller received are
exactly ``transcript.text``, also when the stream then fails. Decoder splitting
properties live in test_sse.py and test_ndjson.py; this file covers the dialect
parsers and the whole client pipeline over an in-process transport.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import patch

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipyllm
from ipyllm import (
    ChatView,
    HTTPStatusError,
    IpyllmError,
    ProtocolError,
    StreamError,
    Transcript,
    render_markdown,
)
from ipyllm.client import retry_after
from ipyllm.dialects import get_dialect
from ipyllm.events import (
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageUpdate,
)
from ipyllm.ndjson import NDJSONDecoder
from ipyllm.render import extras_html, status_line
from ipyllm.sse import ServerSentEvent, SSEDecoder

from .widgets import Frontend, recording

DIALECTS = ["openai", "openai-completions", "openai-responses", "anthropic", "ollama", "gemini"]
KEY = "sk-fuzz-0123456789abcdef"
# Deeper than orjson's limit (1024) and Python's recursion limit: json.loads recurses.
DEEP = "[" * 5000 + "]" * 5000

# Sized to keep this file near 15 s in CI; benchmarks/fuzz_atheris.py runs for as long as asked.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EACH = settings(FUZZ, max_examples=40)  # per dialect: six times over

# -- strategies ---------------------------------------------------------------------------

texts = st.text(max_size=12)
ints = st.integers(0, 40) | st.integers()
json_values = st.recursive(
    st.none() | st.booleans() | ints | st.floats() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
_DELETE = object()


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a JSON value: dict keys and list indexes, nested."""
    children: Any = []
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    for key, child in children:
        yield (*here, key)
        yield from _paths(child, (*here, key))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    key, rest = path[0], path[1:]
    if new is _DELETE and not rest:
        del copy[key]
    else:
        copy[key] = _replaced(copy[key], rest, new)
    return copy


@st.composite
def corrupted(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid provider event with up to two places replaced by any JSON value or removed.

    One corruption at a time reaches every field with a fair chance, which random
    objects almost never do (a text delta whose text is a list, a usage count that is
    a string, an index that is null...).
    """
    value = draw(valid)
    for _ in range(draw(st.integers(0, 2))):
        paths = list(_paths(value))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        value = _replaced(value, path, draw(json_values | st.just(_DELETE)))
    return value


def obj(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object whose values are strategies or constants."""
    return st.fixed_dictionaries(
        {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in fields.items()}
    )


def kinds(*names: str) -> st.SearchStrategy[str]:
    return st.sampled_from(names)


maybe_text = texts | st.none()
usage_openai = obj(prompt_tokens=ints, completion_tokens=ints, total_tokens=ints)


def _chat_chunk(delta: Any, finish: Any = None, **extra: Any) -> st.SearchStrategy[dict]:
    choice = obj(index=0, delta=delta, logprobs=None, finish_reason=finish)
    return obj(id=texts, object="chat.completion.chunk", created=ints, model=texts,
               choices=st.lists(choice, min_size=1, max_size=2), **extra)  # fmt: skip


openai_error = obj(error=obj(message=texts, type=texts, param=None, code=maybe_text))
openai_chunks = st.one_of(
    _chat_chunk(obj(content=texts)),
    _chat_chunk(obj(role="assistant", content="", refusal=None)),
    _chat_chunk(obj(content=None, reasoning_content=texts)),
    _chat_chunk(obj(reasoning=texts)),
    _chat_chunk(obj(refusal=texts)),
    _chat_chunk(
        obj(
            tool_calls=st.lists(
                obj(
                    index=ints, id=texts, type="function", function=obj(name=texts, arguments=texts)
                ),
                max_size=2,
            )
        )
    ),
    _chat_chunk(obj(), kinds("stop", "length", "tool_calls", "content_filter")),
    obj(id=texts, object="chat.completion.chunk", choices=st.just([]), usage=usage_openai),
    openai_error,
)
completion_chunks = st.one_of(
    obj(id=texts, object="text_completion", model=texts,
        choices=st.lists(obj(text=texts, index=0, logprobs=None,
                             finish_reason=maybe_text), min_size=1, max_size=2)),
    obj(id=texts, choices=st.just([]), usage=usage_openai),
    openai_error,
)  # fmt: skip
usage_responses = obj(input_tokens=ints, output_tokens=ints, total_tokens=ints)
responses_events = st.one_of(
    obj(type="response.output_text.delta", item_id=texts, output_index=ints, content_index=0,
        delta=texts),
    obj(type=kinds("response.reasoning_summary_text.delta", "response.reasoning_text.delta",
                   "response.refusal.delta"), item_id=texts, output_index=ints, delta=texts),
    obj(type="response.output_item.added", output_index=ints,
        item=obj(type=kinds("function_call", "message", "reasoning"), id=texts, call_id=texts,
                 name=texts, arguments=texts)),
    obj(type="response.function_call_arguments.delta", output_index=ints, delta=texts),
    obj(type=kinds("response.completed", "response.incomplete", "response.failed"),
        response=obj(id=texts, status=kinds("completed", "incomplete", "failed"),
                     error=st.none() | obj(code=texts, message=texts), usage=usage_responses)),
    obj(type=kinds("response.created", "response.in_progress"), response=obj(id=texts)),
    obj(type="error", code=texts, message=texts, param=None),
)  # fmt: skip
usage_anthropic = obj(input_tokens=ints, output_tokens=ints)
anthropic_events = st.one_of(
    obj(type="message_start", message=obj(id=texts, type="message", role="assistant",
                                          content=st.just([]), model=texts, usage=usage_anthropic)),
    obj(type="content_block_start", index=ints, content_block=st.one_of(
        obj(type="text", text=texts), obj(type="thinking", thinking=texts),
        obj(type="tool_use", id=texts, name=texts, input=st.just({})))),
    obj(type="content_block_delta", index=ints, delta=st.one_of(
        obj(type="text_delta", text=texts), obj(type="thinking_delta", thinking=texts),
        obj(type="input_json_delta", partial_json=texts),
        obj(type="signature_delta", signature=texts))),
    obj(type="content_block_stop", index=ints),
    obj(type="message_delta", delta=obj(stop_reason=kinds("end_turn", "max_tokens", "tool_use"),
                                        stop_sequence=None), usage=obj(output_tokens=ints)),
    obj(type=kinds("message_stop", "ping")),
    obj(type="error", error=obj(type=texts, message=texts)),
)  # fmt: skip
ollama_lines = st.one_of(
    obj(model=texts, created_at=texts, message=obj(role="assistant", content=texts), done=False),
    obj(model=texts, message=obj(role="assistant", content="", thinking=texts), done=False),
    obj(model=texts, message=obj(role="assistant", content="", tool_calls=st.lists(
        obj(function=obj(name=texts, arguments=st.dictionaries(texts, json_values, max_size=3))),
        max_size=2)), done=False),
    obj(model=texts, response=texts, done=False),  # /api/generate
    obj(model=texts, message=obj(role="assistant", content=""), done=True,
        done_reason=kinds("stop", "length"), total_duration=ints, prompt_eval_count=ints,
        eval_count=ints, eval_duration=ints),
    obj(error=texts),
)  # fmt: skip
gemini_part = st.one_of(
    obj(text=texts),
    obj(text=texts, thought=True),
    obj(functionCall=obj(name=texts, args=st.dictionaries(texts, json_values, max_size=3))),
)
gemini_chunks = st.one_of(
    obj(candidates=st.lists(obj(content=obj(parts=st.lists(gemini_part, max_size=3),
                                            role="model"), index=0), min_size=1, max_size=2),
        usageMetadata=obj(promptTokenCount=ints, candidatesTokenCount=ints,
                          totalTokenCount=ints), modelVersion=texts),
    obj(candidates=st.lists(obj(content=obj(parts=st.lists(gemini_part, max_size=1),
                                            role="model"),
                                finishReason=kinds("STOP", "MAX_TOKENS", "SAFETY"), index=0),
                            min_size=1, max_size=1),
        usageMetadata=obj(promptTokenCount=ints, candidatesTokenCount=ints,
                          thoughtsTokenCount=ints, totalTokenCount=ints)),
    obj(promptFeedback=obj(blockReason=kinds("SAFETY", "OTHER"))),
    obj(error=obj(code=ints, message=texts, status=texts)),
)  # fmt: skip
VALID: dict[str, st.SearchStrategy[Any]] = {
    "openai": openai_chunks,
    "openai-completions": completion_chunks,
    "openai-responses": responses_events,
    "anthropic": anthropic_events,
    "ollama": ollama_lines,
    "gemini": gemini_chunks,
}
SHAPES = {dialect: corrupted(valid) for dialect, valid in VALID.items()}
# Values of every JSON type, truthy and falsy, to put in place of any one field.
WRONG = [_DELETE, None, True, False, 0, 7, -1, 2**70, 1.5, "", "x", [], ["x"], {}, {"x": 1}]
RESPONSES_TYPES = (
    "response.created", "response.output_text.delta", "response.output_item.added",
    "response.function_call_arguments.delta", "response.completed", "error",
)  # fmt: skip
ANTHROPIC_TYPES = ("message_start", "content_block_delta", "message_delta", "message_stop")
EVENT_NAMES = {"openai-responses": RESPONSES_TYPES, "anthropic": ANTHROPIC_TYPES}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # NaN and Infinity included, as sloppy servers do


@st.composite
def wire_events(draw: st.DrawFn, dialect: str) -> ServerSentEvent:
    """One wire event: a provider-shaped chunk, any JSON, any text, or an end marker."""
    data = draw(
        st.one_of(
            SHAPES[dialect].map(_dumps),
            SHAPES[dialect].map(_dumps),
            json_values.map(_dumps),
            st.text(max_size=30),
            st.just("[DONE]"),
        )
    )
    names = EVENT_NAMES.get(dialect, ("message",))
    return ServerSentEvent(data, draw(st.sampled_from(names) | st.just("message") | texts))


@st.composite
def bodies(draw: st.DrawFn, dialect: str) -> bytes:
    """A response body: framed provider events mixed with noise, or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    events = draw(st.lists(wire_events(dialect), max_size=12))
    out = []
    for event in events:
        if get_dialect(dialect).framing == "ndjson":
            out.append(event.data.replace("\n", " ") + draw(st.sampled_from(["\n", "\r\n"])))
        else:
            head = "" if event.event == "message" else f"event: {event.event}\n"
            lines = "".join(f"data: {line}\n" for line in event.data.split("\n"))
            noise = draw(st.sampled_from(["", ": keep-alive\n\n", "retry: 10\n", "id: 7\n"]))
            out.append(
                noise + head.replace("\r", "") + lines + draw(st.sampled_from(["\n", "\r\n"]))
            )
    data = "".join(out).encode()
    if draw(st.booleans()):
        data += draw(st.binary(max_size=20))
    return data


# -- what a valid normalized event looks like -----------------------------------------------


def _int_or_none(value: Any) -> bool:
    return value is None or (type(value) is int)


def check_event(event: Event) -> None:
    """Events carry the types the transcript and the view rely on."""
    if isinstance(event, TextDelta | ReasoningDelta | RefusalDelta):
        assert type(event.text) is str
    elif isinstance(event, ToolCallDelta):
        assert type(event.index) is int and type(event.arguments) is str
        assert event.id is None or type(event.id) is str
        assert event.name is None or type(event.name) is str
    elif isinstance(event, Finish):
        assert type(event.reason) is str and event.reason
    elif isinstance(event, UsageUpdate):
        assert type(event.raw) is dict
        assert all(
            _int_or_none(v) for v in (event.input_tokens, event.output_tokens, event.total_tokens)
        )
    elif isinstance(event, ErrorEvent):
        assert type(event.message) is str and event.message
        assert event.type is None or type(event.type) is str
        assert event.code is None or type(event.code) is str
    else:
        raise AssertionError(f"not a normalized event: {event!r}")


# -- decoders ----------------------------------------------------------------------------------


@FUZZ
@given(pieces=st.lists(st.binary(max_size=40) | st.sampled_from([b"\n", b"\r", b"data: "])))
def test_the_sse_decoder_takes_any_bytes(pieces: list[bytes]) -> None:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)] + decoder.close()
    assert all(type(e.data) is str and type(e.event) is str and e.event for e in events)


@FUZZ
@given(pieces=st.lists(st.binary(max_size=40) | json_values.map(lambda v: _dumps(v).encode())))
def test_the_ndjson_decoder_raises_only_protocol_errors(pieces: list[bytes]) -> None:
    decoder = NDJSONDecoder()
    for piece in [*pieces, None]:
        while True:  # after an error the lines behind the bad one still come out
            try:
                decoder.feed(piece) if piece is not None else decoder.close()
            except ProtocolError:
                piece = b"" if piece is not None else None
                continue
            break
    assert not decoder.has_pending


def test_json_nested_deeper_than_the_parsers_recurse_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        NDJSONDecoder().feed(DEEP.encode() + b"\n")
    with pytest.raises(ProtocolError):
        ServerSentEvent(DEEP).json()
    for dialect in DIALECTS:
        with pytest.raises(ProtocolError):
            get_dialect(dialect).new_parser().parse(ServerSentEvent(DEEP))


# -- dialect parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@EACH
@given(data=st.data())
def test_each_parser_survives_every_field_of_an_event_being_wrong(
    dialect: str, data: st.DataObject
) -> None:
    """Each field of a valid event, one at a time, removed or given each JSON type."""
    valid = data.draw(VALID[dialect])
    name = data.draw(st.sampled_from(EVENT_NAMES.get(dialect, ("message",))))
    for path in [(), *_paths(valid)]:
        for wrong in WRONG:
            if wrong is _DELETE and not path:
                continue
            event = ServerSentEvent(_dumps(_replaced(valid, path, wrong)), name)
            try:
                events = get_dialect(dialect).new_parser().parse(event)
            except ProtocolError:
                assert not path  # only a wire event that is not an object at all is refused
                continue
            for normalized in events:
                check_event(normalized)
            transcript = Transcript()
            for normalized in events:
                transcript.apply(normalized)
            extras_html(transcript)


@pytest.mark.parametrize("dialect", DIALECTS)
@EACH
@given(data=st.data())
def test_each_parser_maps_any_event_to_valid_events_or_a_protocol_error(
    dialect: str, data: st.DataObject
) -> None:
    parser = get_dialect(dialect).new_parser()
    transcript = Transcript(provider=dialect, model="m")
    transcript.start()
    texts_out: list[str] = []
    for wire in data.draw(st.lists(wire_events(dialect), min_size=1, max_size=10)):
        try:
            events = parser.parse(wire)
        except IpyllmError as error:  # the client ends the stream here
            assert isinstance(error, ProtocolError) and str(error)
            break
        assert isinstance(events, list)
        for event in events:
            check_event(event)
            transcript.apply(event)
            if isinstance(event, TextDelta):
                texts_out.append(event.text)
    assert transcript.text == "".join(texts_out)
    # What the view and the static copy draw from the transcript never fails either.
    transcript.end(data.draw(st.sampled_from(["done", "stopped", "error"])))
    extras_html(transcript)
    status_line(transcript)
    json.dumps(transcript.to_dict(), default=str)


@pytest.mark.parametrize("dialect", DIALECTS)
@EACH
@given(value=json_values, event=texts | st.just("message"))
def test_each_parser_takes_any_json_value(dialect: str, value: Any, event: str) -> None:
    try:
        events = get_dialect(dialect).new_parser().parse(ServerSentEvent(_dumps(value), event))
    except ProtocolError:
        assert not isinstance(value, dict)  # only non-objects are refused outright
        return
    for normalized in events:
        check_event(normalized)


# -- the whole client pipeline -------------------------------------------------------------------

STATUSES = [200] * 8 + [201, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503, 529]
CONTENT_TYPES = [
    "text/event-stream",
    "text/event-stream; charset=utf-8",
    "application/x-ndjson",
    "application/json",
    "text/html",
    "text/plain",
    None,
]
ENDINGS = ["eof", "eof", "eof", "reset", "protocol", "timeout", "refused"]


class _Served:
    """One response as the fuzzer drew it, served by an httpx.MockTransport."""

    def __init__(self, status: int, content_type: str | None, headers: dict[str, str],
                 pieces: list[bytes], ending: str) -> None:  # fmt: skip
        self.status, self.content_type, self.pieces, self.ending = (
            status, content_type, pieces, ending,
        )  # fmt: skip
        self.headers = dict(headers)
        if content_type is not None:
            self.headers["content-type"] = content_type

    async def body(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece
        if self.ending == "reset":
            raise httpx.ReadError("connection reset by peer")
        if self.ending == "protocol":
            raise httpx.RemoteProtocolError("peer closed connection without a complete body")
        if self.ending == "timeout":
            raise httpx.ReadTimeout("timed out")

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.ending == "refused":
            raise httpx.ConnectError("connection refused")
        return httpx.Response(self.status, headers=self.headers, content=self.body())


@st.composite
def served(draw: st.DrawFn, dialect: str) -> _Served:
    data = draw(bodies(dialect))
    cuts = sorted(set(draw(st.lists(st.integers(0, max(0, len(data))), max_size=6))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    headers = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "retry-after": st.text(max_size=20) | st.sampled_from(["1", "1e999", "nan"]),
                "retry-after-ms": st.text(max_size=8),
                "x-should-retry": st.sampled_from(["true", "false", "maybe"]),
            },
        )
    )
    # Header values must be latin-1 encodable; keep printable ASCII like real servers send.
    headers = {k: "".join(c for c in v if " " <= c <= "~") for k, v in headers.items()}
    return _Served(
        draw(st.sampled_from(STATUSES)),
        draw(st.sampled_from(CONTENT_TYPES)),
        headers,
        [p for p in pieces if p],
        draw(st.sampled_from(ENDINGS)),
    )


async def consume(dialect: str, response: _Served, through_view: bool) -> None:
    def transport(self: Any, base_url: str) -> httpx.MockTransport:
        return httpx.MockTransport(response.handle)

    # The dialect's own transport hook, as the in-process demo dialect uses it.
    with patch.object(type(get_dialect(dialect)), "transport", transport):
        answer = ipyllm.stream(
            "hi", provider=dialect, base_url="http://fuzz.invalid/v1", api_key=KEY,
            max_retries=0, stall_timeout=1,
        )  # fmt: skip
        received: list[str] = []
        error: IpyllmError | None = None
        if through_view:
            with recording() as frontend:
                view = ChatView()
                transcript = await view.stream(answer)
                error = transcript.error
                received.append(transcript.text)
                assert frontend.shown_body(view) == render_markdown(transcript.text)
                assert frontend.state(frontend.one(view, "ipyllm-stop"))["disabled"]
                view.close_all_children()
        else:
            try:
                async for event in answer:
                    if isinstance(event, TextDelta):
                        received.append(event.text)
            except IpyllmError as raised:
                error = raised
            transcript = answer.transcript
    assert transcript.text == "".join(received), "text handed out is never lost"
    if error is None:
        assert transcript.status == "done"
        assert 200 <= response.status < 300 and response.ending != "refused"
    else:
        assert isinstance(error, StreamError) and transcript.status == "error"
        assert transcript.error is error and error.transcript is transcript
        assert str(error) and KEY not in str(error) and KEY not in repr(error)
        if response.ending != "refused" and not 200 <= response.status < 300:
            assert isinstance(error, HTTPStatusError) and error.status_code == response.status


@pytest.mark.parametrize("dialect", DIALECTS)
@EACH
@given(data=st.data())
def test_the_client_pipeline_survives_any_response(dialect: str, data: st.DataObject) -> None:
    response = data.draw(served(dialect))
    through_view = data.draw(st.booleans())
    asyncio.run(asyncio.wait_for(consume(dialect, response, through_view), timeout=10))


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "text/event-stream", f"data: {DEEP}\n\n"),
        (200, "application/x-ndjson", f"{DEEP}\n"),
        (200, "application/x-ndjson", DEEP),  # a last line without its newline
        (200, "application/json", DEEP),
        (500, "application/json", DEEP),
        (401, "application/json", '{"error": {"message": ' * 3000),
    ],
    ids=["sse", "ndjson", "ndjson-last-line", "json-200", "json-500", "json-401"],
)
@pytest.mark.parametrize("dialect", ["openai", "ollama"])
def test_deep_json_anywhere_in_a_response_is_a_clear_error(
    dialect: str, status: int, content_type: str, body: str
) -> None:
    response = _Served(status, content_type, {}, [body.encode()], "eof")
    asyncio.run(asyncio.wait_for(consume(dialect, response, False), timeout=10))


@FUZZ
@given(
    value=st.text(max_size=40)
    | st.sampled_from(["1e999", "-5", "nan", "inf", "Wed, 21 Oct 2099 07:28:00 GMT"])
)
def test_any_retry_after_header_gives_a_usable_delay_or_none(value: str) -> None:
    value = "".join(c for c in value if " " <= c <= "~")
    for name in ("retry-after", "retry-after-ms"):
        delay = retry_after(httpx.Headers({name: value}))
        assert delay is None or (delay >= 0 and not math.isnan(delay))


async def test_tool_call_arguments_nested_too_deep_still_end_the_view_cleanly(
    frontend: Frontend,
) -> None:
    async def source() -> AsyncIterator[Event]:
        yield TextDelta("Calling a tool.")
        yield ToolCallDelta(index=0, id="call_1", name="f", arguments=DEEP)
        yield Finish("tool_calls")

    view = ChatView()
    transcript = await asyncio.wait_for(view.stream(source()), timeout=10)
    assert transcript.status == "done"
    assert frontend.state(frontend.one(view, "ipyllm-stop"))["disabled"]
    assert "[[[" in frontend.value(view, "ipyllm-extras")  # shown as the text that arrived
    view.close_all_children()
