"""The teaching server with data: images of every kind it reads (sizes from their own
headers), deterministic answers that fit a schema, JSON modes, and the bodies it keeps."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipyllm
from ipyllm.client import schema_problems
from ipyllm.render import parse_partial
from ipyllm.server import TeachingServer

from .conftest import base_url_for

FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
async def kept() -> AsyncIterator[TeachingServer]:
    async with TeachingServer(token_rate=0, first_token_latency=0, keep_bodies=True) as server:
        yield server


def encoded(size: tuple[int, int], kind: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    mode = "P" if kind == "GIF" else "RGB"
    Image.new(mode, size).save(buffer, format=kind, **options)
    return buffer.getvalue()


async def test_every_image_kind_is_read_from_its_own_header() -> None:
    images = [
        encoded((640, 480), "PNG"),
        encoded((33, 21), "JPEG"),
        encoded((33, 21), "JPEG", progressive=True),
        encoded((7, 9), "GIF"),
    ]
    expected = "image/png 640×480, image/jpeg 33×21, image/jpeg 33×21, image/gif 7×9"
    try:
        images += [encoded((50, 40), "WEBP"), encoded((51, 41), "WEBP", lossless=True)]
        expected += ", image/webp 50×40, image/webp 51×41"
    except (KeyError, OSError):  # a Pillow built without WebP
        pass
    transcript = await ipyllm.achat("Look", provider="demo", base_url=FAST_DEMO, images=images)
    assert transcript.text.startswith(f"*{len(images)} images received: {expected}.*")


async def test_a_url_image_is_refused_by_the_offline_server(kept: TeachingServer) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(ipyllm.HTTPStatusError, match="takes images as data URLs") as caught:
        await ipyllm.achat(
            [{"role": "user", "content": [part, {"type": "text", "text": "Hi"}]}],
            provider="openai",
            base_url=base_url_for(kept.url, "openai"),
            api_key="sk-test",
            max_retries=0,
        )
    assert caught.value.status_code == 400
    with pytest.raises(ipyllm.ConfigurationError, match="takes images as bytes, not as a URL"):
        ipyllm.stream([{"role": "user", "content": [part]}], provider="ollama")


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8},
            "x": {"type": "number", "minimum": -2.5, "maximum": -1},
            "s": {"type": "string", "minLength": 12, "maxLength": 14},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email"},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "const": {"const": [1, 2]},
        },
        "required": ["n", "x", "s", "day", "mail", "flag", "nothing", "const"],
    },
    {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": 4,
                "maxItems": 5,
                "items": {"$ref": "#/$defs/Item"},
            },
            "pick": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
            "both": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"enum": ["p", "q"]}}, "required": ["b"]},
                ]
            },
        },
        "required": ["items", "pick", "both"],
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "tags": {"type": "array"}},
                "required": ["name"],
                "additionalProperties": False,
            }
        },
    },
    {  # a recursive schema: the answer stops where only optional parts are left
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "required": ["node"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["v"],
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=["plain", "scalars", "refs", "recursive"])
async def test_the_demo_answer_fits_the_schema_and_is_deterministic(schema: dict[str, Any]) -> None:
    first = await ipyllm.achat("Fill it in", provider="demo", base_url=FAST_DEMO, schema=schema)
    again = await ipyllm.achat("Fill it in", provider="demo", base_url=FAST_DEMO, schema=schema)
    assert schema_problems(first.parsed, schema) == []
    assert first.text == again.text


async def test_json_modes_without_a_schema_get_a_json_object(kept: TeachingServer) -> None:
    openai = await ipyllm.achat(
        "Hi",
        provider="openai",
        base_url=base_url_for(kept.url, "openai"),
        api_key="sk-test",
        response_format={"type": "json_object"},
    )
    assert set(json.loads(openai.text)) == {"answer"}
    ollama = await ipyllm.achat(
        "Hi", provider="ollama", base_url=kept.url, format="json"
    )  # Ollama's own JSON mode, as a parameter
    assert set(json.loads(ollama.text)) == {"answer"}
    assert kept.app.last_body["format"] == "json"


async def test_kept_bodies_hold_the_request_and_never_a_header(kept: TeachingServer) -> None:
    key = "sk-test-kept-bodies-0123456789"
    await ipyllm.achat(
        "Hello", provider="openai", base_url=base_url_for(kept.url, "openai"), api_key=key
    )
    (record,) = kept.app.bodies
    assert record["path"] == "/v1/chat/completions" and record["id"] == 1
    assert record["body"]["messages"] == [{"role": "user", "content": "Hello"}]
    assert key not in json.dumps(kept.app.bodies) and key not in json.dumps(kept.app.log)
    async with TeachingServer(token_rate=0, first_token_latency=0) as plain:
        await ipyllm.achat("Hi", provider="openai", base_url=f"{plain.url}/v1", api_key=key)
        assert plain.app.bodies == [] and plain.app.last_body is None  # off by default


# -- the pure-Python partial JSON parser reads what jiter reads --------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_the_python_partial_parser_reads_every_prefix_as_jiter_does(
    value: Any, indented: bool
) -> None:
    jiter = pytest.importorskip("jiter")
    text = json.dumps(value, indent=2 if indented else None, ensure_ascii=not indented)
    for end in range(1, len(text) + 1):
        prefix = text[:end]
        try:
            expected = jiter.from_json(prefix.encode(), partial_mode="trailing-strings")
        except ValueError:
            expected = "error"
        try:
            ours = parse_partial(prefix)
        except ValueError:
            ours = "error"
        assert ours == expected, prefix
