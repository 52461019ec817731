"""The SSE decoder against the WHATWG rules, for every split of the bytes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipyllm import ProtocolError
from ipyllm.sse import ServerSentEvent, SSEDecoder


def decode(data: bytes, cuts: list[int] | None = None) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    points = sorted(set(cuts or []))
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    events = [event for piece in pieces for event in decoder.feed(piece)]
    events += decoder.close()
    return events, decoder


def reference(data: bytes) -> tuple[list[tuple[str, str, str]], str, int | None]:
    """The spec's algorithm, transcribed literally over the whole text at once."""
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # the text after the last line end is not a line: discarded at EOF
    events, data_buffer, event_type, id_buffer, last_id, retry = [], "", "", "", "", None
    for line in lines:
        if line == "":
            last_id = id_buffer
            if data_buffer == "":
                event_type = ""
                continue
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            events.append((event_type or "message", data_buffer, last_id))
            data_buffer, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data_buffer += value + "\n"
        elif field == "id" and "\0" not in value:
            id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, last_id, retry


def as_tuples(events: list[ServerSentEvent]) -> list[tuple[str, str, str]]:
    return [(e.event, e.data, e.id) for e in events]


# -- the rules, one by one ------------------------------------------------------


def test_basic_event_and_default_type() -> None:
    events, _ = decode(b"data: hello\n\n")
    assert events == [ServerSentEvent(data="hello", event="message", id="", retry=None)]


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(newline: bytes) -> None:
    data = b"event: a" + newline + b"data: 1" + newline + newline + b"data: 2" + newline * 2
    events, _ = decode(data)
    assert as_tuples(events) == [("a", "1", ""), ("message", "2", "")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    data = b"data: x\r\n\r\ndata: y\r\n\r\n"
    for cut in range(len(data)):
        events, _ = decode(data, [cut])
        assert as_tuples(events) == [("message", "x", ""), ("message", "y", "")], cut


def test_lone_cr_then_lf_later_is_two_line_ends() -> None:
    # "a\r" then "\n" glued: CRLF; but "a\r" + "b" is CR then a new line "b".
    events, _ = decode(b"data: a\rdata: b\r\r")
    assert as_tuples(events) == [("message", "a\nb", "")]


def test_one_leading_bom_is_ignored_even_split() -> None:
    data = b"\xef\xbb\xbfdata: x\n\n"
    for cut in range(1, 4):
        events, _ = decode(data, [cut])
        assert as_tuples(events) == [("message", "x", "")]
    events, _ = decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n")
    assert events == []  # a second BOM makes the first line's field name "\ufeffdata"


def test_comments_are_ignored_anywhere() -> None:
    events, _ = decode(b": ping\n:\ndata: a\n: inside\ndata: b\n\n:tail\n\n")
    assert as_tuples(events) == [("message", "a\nb", "")]


def test_field_without_colon_and_exactly_one_space_stripped() -> None:
    events, _ = decode(b"data\ndata:  two\ndata:none\n\n")
    assert events[0].data == "\n two\nnone"


def test_dispatch_needs_data() -> None:
    events, decoder = decode(b"event: ping\n\nid: 7\n\nretry: 10\n\ndata: x\n\n")
    assert as_tuples(events) == [("message", "x", "7")]  # the event type was reset
    assert decoder.retry == 10
    assert events[0].retry == 10


def test_id_with_nul_is_ignored_and_id_persists() -> None:
    events, decoder = decode(b"id: 1\ndata: a\n\nid: b\x00d\ndata: b\n\ndata: c\n\n")
    assert [e.id for e in events] == ["1", "1", "1"]
    assert decoder.last_event_id == "1"


def test_empty_id_resets() -> None:
    events, _ = decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n")
    assert [e.id for e in events] == ["1", ""]


@pytest.mark.parametrize("value", [b"abc", b"1.5", b"-1", b"", b"\xc2\xb2", b"12 "])
def test_retry_digits_only(value: bytes) -> None:
    _, decoder = decode(b"retry: " + value + b"\ndata: x\n\n")
    assert decoder.retry is None


def test_unfinished_event_is_discarded_at_end() -> None:
    for tail in (b"data: partial", b"data: partial\n", b'data: {"cut'):
        events, decoder = decode(b"data: ok\n\n" + tail)
        assert as_tuples(events) == [("message", "ok", "")]
    decoder = SSEDecoder()
    decoder.feed(b"data: ok\n\ndata: half")
    assert decoder.has_pending
    assert decoder.close() == []
    assert not decoder.has_pending


def test_unicode_line_separators_are_not_line_ends() -> None:
    payload = '{"t": "a\u2028b\u2029c\u0085d\x0be\x0cf"}'
    events, _ = decode(b"data: " + payload.encode() + b"\n\n")
    assert events[0].data == payload


def test_split_multibyte_characters_survive_every_split() -> None:
    data = "data: 你好🌏é\n\n".encode()
    for cut in range(len(data)):
        for cut2 in range(cut, len(data)):
            events, _ = decode(data, [cut, cut2])
            assert events[0].data == "你好🌏é"


def test_invalid_utf8_becomes_replacement_not_an_error() -> None:
    events, _ = decode(b"data: \xff\xfe ok\n\n")
    assert events[0].data == "\ufffd\ufffd ok"


def test_json_helper_gives_a_clear_error() -> None:
    assert ServerSentEvent('{"a": 1}').json() == {"a": 1}
    with pytest.raises(ProtocolError, match="does not carry JSON"):
        ServerSentEvent("{oops").json()


# -- properties -------------------------------------------------------------------

_sse_line = st.one_of(
    st.sampled_from(
        [
            "data: {}",
            "data",
            "data:",
            "data:  x",
            "event: e",
            "event",
            "id: 1",
            "id: a\0b",
            "id",
            "retry: 100",
            "retry: x",
            ": comment",
            ":",
            "",
            "\ufeffdata: bom",
            "foo: bar",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
_newline = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.tuples(_sse_line, _newline), max_size=30))
    text = "".join(line + end for line, end in parts)
    if draw(st.booleans()):
        text = "\ufeff" + text
    data = text.encode()
    if draw(st.booleans()):
        data += draw(st.binary(max_size=8))  # arbitrary bytes, invalid UTF-8 included
    return data


@settings(max_examples=400, deadline=None)
@given(data=sse_streams(), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_split_gives_the_same_events_as_the_spec(data: bytes, cuts: list[int]) -> None:
    events, decoder = decode(data, [c for c in cuts if c <= len(data)])
    expected_events, expected_id, expected_retry = reference(data)
    assert as_tuples(events) == expected_events
    assert decoder.last_event_id == expected_id
    assert decoder.retry == expected_retry


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_arbitrary_bytes_never_raise_and_split_does_not_matter(
    data: bytes, cuts: list[int]
) -> None:
    whole, _ = decode(data)
    split, _ = decode(data, [c for c in cuts if c <= len(data)])
    assert as_tuples(split) == as_tuples(whole)
    # byte-at-a-time: the harshest split
    one_by_one, _ = decode(data, list(range(len(data))))
    assert as_tuples(one_by_one) == as_tuples(whole)
