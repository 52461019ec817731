"""The NDJSON decoder: lines split on bytes, any split of the bytes, clear errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipyllm import ProtocolError
from ipyllm.ndjson import LineDecoder, NDJSONDecoder


def feed_all(data: bytes, cuts: list[int]) -> list[object]:
    decoder = NDJSONDecoder()
    points = sorted({c for c in cuts if 0 <= c <= len(data)})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    objects = [obj for piece in pieces for obj in decoder.feed(piece)]
    return objects + decoder.close()


def test_objects_lines_and_blank_lines() -> None:
    data = b'{"a": 1}\n\n{"b": [2]}\r\n  \n{"c": "x"}'
    assert feed_all(data, []) == [{"a": 1}, {"b": [2]}, {"c": "x"}]


def test_unicode_separators_inside_json_are_not_line_ends() -> None:
    text = json.dumps({"t": "a\u2028b\u2029c\u0085d"}, ensure_ascii=False)
    assert feed_all(text.encode() + b"\n", []) == [{"t": "a\u2028b\u2029c\u0085d"}]


def test_multibyte_split_everywhere() -> None:
    data = '{"t": "你好🌏"}\n'.encode()
    for cut in range(len(data)):
        assert feed_all(data, [cut]) == [{"t": "你好🌏"}]


def test_bad_line_raises_after_the_good_ones_and_nothing_else_is_lost() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{oops\n{"b": 2}\n') == [{"a": 1}]
    with pytest.raises(ProtocolError, match="not JSON"):
        decoder.feed(b"")
    assert decoder.feed(b"") == [{"b": 2}]


def test_line_decoder_keeps_the_unterminated_line_for_close() -> None:
    lines = LineDecoder()
    assert lines.feed(b"one\ntw") == ["one"]
    assert lines.has_pending
    assert lines.close() == ["tw"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    objects=st.lists(json_values, max_size=8),
    cuts=st.lists(st.integers(0, 600), max_size=12),
    ascii_only=st.booleans(),
)
def test_any_split_gives_the_same_objects(objects: list, cuts: list[int], ascii_only: bool) -> None:
    data = b"".join(json.dumps(o, ensure_ascii=ascii_only).encode() + b"\n" for o in objects)
    assert feed_all(data, cuts) == objects


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_arbitrary_bytes_raise_only_protocol_errors_and_ignore_splits(
    data: bytes, cuts: list[int]
) -> None:
    def outcome(points: list[int]) -> list[object]:
        decoder = NDJSONDecoder()
        results: list[object] = []
        marks = sorted({c for c in points if c <= len(data)})
        pieces = [data[a:b] for a, b in zip([0, *marks], [*marks, len(data)], strict=True)]
        for piece in [*pieces, None]:
            while True:  # keep calling until the queue is drained, recording each error
                try:
                    got = decoder.feed(piece) if piece is not None else decoder.close()
                except ProtocolError:
                    results.append("error")
                    piece = b"" if piece is not None else None
                    continue
                results.extend(got)
                break
        return results

    assert outcome(cuts) == outcome([])
