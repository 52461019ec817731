"""Structured answers: a schema (a JSON Schema dict or a pydantic model class) in each
provider's own request fields, the teaching server's answer that fits it, the JSON growing
in the view, ``transcript.parsed`` at the end, and clear errors that keep the text."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import ipyllm
from ipyllm import ChatView, StructuredOutputError
from ipyllm.client import schema_problems
from ipyllm.render import highlight_code, json_html, partial_json, sanitize_html
from ipyllm.server import ServerThread, TeachingServer

from .conftest import base_url_for
from .safety import PAYLOADS, violations
from .widgets import Frontend

pydantic = pytest.importorskip("pydantic")

PROVIDERS = ["openai", "openai-responses", "anthropic", "gemini", "ollama"]
FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"

CITY = {
    "title": "City",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "population": {"type": "integer", "minimum": 1000, "maximum": 40_000_000},
        "area_km2": {"type": "number", "exclusiveMinimum": 0, "maximum": 20_000},
        "capital": {"type": "boolean"},
        "climate": {"enum": ["arid", "temperate", "tropical", "polar"]},
        "districts": {
            "type": "array",
            "minItems": 3,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "parks": {"type": "integer"}},
                "required": ["name", "parks"],
            },
        },
    },
    "required": ["name", "population", "area_km2", "capital", "climate", "districts"],
}
STRICT_CITY = json.loads(json.dumps(CITY))
STRICT_CITY["additionalProperties"] = False
STRICT_CITY["properties"]["districts"]["items"]["additionalProperties"] = False


class Person(pydantic.BaseModel):
    name: str
    age: int
    email: str | None = None


@pytest.fixture
async def kept() -> AsyncIterator[TeachingServer]:
    async with TeachingServer(token_rate=0, first_token_latency=0, keep_bodies=True) as server:
        yield server


def ask(server: TeachingServer, provider: str, **options: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "base_url": base_url_for(server.url, provider),
        "api_key": "sk-test-schema",
        **options,
    }


# -- the request fields of each provider -----------------------------------------------------


def expected_fields(provider: str, body: dict[str, Any]) -> Any:
    """Where each API takes the schema, as it documents it."""
    if provider == "openai":
        return body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "City", "schema": STRICT_CITY, "strict": True},
        }
    if provider == "openai-responses":
        return body["text"] == {
            "format": {"type": "json_schema", "name": "City", "schema": STRICT_CITY, "strict": True}
        }
    if provider == "anthropic":
        tool = body["tools"][0]
        return (
            tool["name"] == "City"
            and tool["input_schema"] == CITY
            and body["tool_choice"] == {"type": "tool", "name": "City"}
        )
    if provider == "gemini":
        return body["generationConfig"] == {
            "responseMimeType": "application/json",
            "responseJsonSchema": CITY,
        }
    return body["format"] == CITY  # Ollama


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_provider_gets_the_schema_in_its_fields_and_the_answer_fits(
    kept: TeachingServer, provider: str
) -> None:
    transcript = await ipyllm.achat("Describe Lima", **ask(kept, provider, schema=CITY))
    assert expected_fields(provider, kept.app.last_body), kept.app.last_body
    assert transcript.status == "done" and transcript.schema == CITY
    assert isinstance(transcript.parsed, dict)
    assert schema_problems(transcript.parsed, CITY) == []
    assert len(transcript.parsed["districts"]) == 3  # minItems honoured
    assert json.loads(transcript.text) == transcript.parsed
    if provider == "anthropic":  # the forced tool's input is the answer, not a tool call
        assert transcript.tool_calls == [] and transcript.finish_reason == "tool_use"


async def test_a_schema_that_cannot_be_strict_is_sent_as_it_is(kept: TeachingServer) -> None:
    optional = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    transcript = await ipyllm.achat("Hi", **ask(kept, "openai", schema=optional))
    sent = kept.app.last_body["response_format"]["json_schema"]
    assert sent == {"name": "answer", "schema": optional, "strict": False}
    assert set(transcript.parsed) == {"a", "b"}


async def test_older_gemini_models_get_an_openapi_response_schema(kept: TeachingServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["tags"],
        "additionalProperties": False,
        "$defs": {"Tag": {"type": "string", "enum": ["x", "y"]}},
    }
    transcript = await ipyllm.achat(
        "Tag it", **ask(kept, "gemini", model="gemini-2.0-flash", schema=schema)
    )
    assert kept.app.last_body["generationConfig"]["responseSchema"] == {
        "type": "OBJECT",
        "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["x", "y"]}},
            "note": {"type": "STRING", "nullable": True},
        },
        "required": ["tags"],
    }
    tags = transcript.parsed["tags"]
    assert len(tags) == 2 and set(tags) <= {"x", "y"} and "note" in transcript.parsed


def test_what_cannot_be_a_schema_is_refused_before_sending() -> None:
    with pytest.raises(ipyllm.ConfigurationError, match="cannot be asked for an answer"):
        ipyllm.stream("Hi", provider="openai-completions", api_key="k", schema=CITY)
    with pytest.raises(ipyllm.ConfigurationError, match="root must be an object"):
        ipyllm.stream("Hi", provider="demo", base_url=FAST_DEMO, schema={"type": "array"})
    with pytest.raises(ipyllm.ConfigurationError, match="not list"):
        ipyllm.stream("Hi", provider="demo", base_url=FAST_DEMO, schema=[CITY])


# -- pydantic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_pydantic_model_class_gives_an_instance(
    kept: TeachingServer, provider: str
) -> None:
    transcript = await ipyllm.achat("Who wrote it?", **ask(kept, provider, schema=Person))
    assert isinstance(transcript.parsed, Person)
    assert transcript.parsed == Person.model_validate_json(transcript.text)
    assert transcript.to_dict()["parsed"] == transcript.parsed.model_dump(mode="json")
    if provider == "openai":  # an optional field: not strict, the model's schema as it is
        sent = kept.app.last_body["response_format"]["json_schema"]
        assert sent["strict"] is False and sent["schema"] == Person.model_json_schema()


# -- errors that keep the text ----------------------------------------------------------------


async def test_invalid_json_keeps_the_text_and_names_the_error(kept: TeachingServer) -> None:
    answer = ipyllm.stream("Describe Lima", **ask(kept, "openai", schema=CITY, max_tokens=12))
    with pytest.raises(StructuredOutputError, match="not valid JSON") as caught:
        async for _ in answer:
            pass
    error = caught.value
    assert "cut off at its token limit" in str(error)
    assert error.transcript is answer.transcript and answer.transcript.status == "error"
    assert answer.transcript.text and answer.transcript.text.startswith('{"name": ')
    assert answer.transcript.parsed is None and error.problems


async def test_a_pydantic_model_names_what_does_not_fit(kept: TeachingServer) -> None:
    with pytest.raises(StructuredOutputError, match="not valid JSON of Person") as caught:
        await ipyllm.achat("Who?", **ask(kept, "ollama", schema=Person, max_tokens=5))
    assert caught.value.transcript is not None and caught.value.transcript.text


async def test_a_schema_violation_lists_each_problem(kept: TeachingServer) -> None:
    # The demo model ignores "pattern": its answer breaks the schema, as a model's might.
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[0-9]+$"}},
        "required": ["code"],
    }
    with pytest.raises(StructuredOutputError, match=r"\$\.code should match") as caught:
        await ipyllm.achat("Code?", **ask(kept, "anthropic", schema=schema))
    assert caught.value.problems == ["$.code should match '^[0-9]+$'"]
    assert json.loads(caught.value.transcript.text) == {"code": "demo code"}  # type: ignore[union-attr]


def test_schema_problems_by_keyword() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
            "kind": {"$ref": "#/$defs/Kind"},
            "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["n", "kind"],
        "additionalProperties": False,
        "$defs": {"Kind": {"enum": ["a", "b"]}},
    }
    assert schema_problems({"n": 2, "kind": "a", "either": None}, schema) == []
    wrong = {"n": 0, "tags": ["x", 1], "kind": "c", "extra": 1, "either": 3}
    assert schema_problems(wrong, schema) == [
        "$.n should be >= 1",
        "$.tags should have at most 1 items",
        "$.tags[1] should be string, not integer",
        '$.kind should be one of ["a", "b"]',
        "$ has 'extra', which the schema does not allow",
        "$.either fits none of the schema's anyOf choices",
    ]
    assert schema_problems({}, schema) == ["$ lacks 'n'", "$ lacks 'kind'"]
    assert schema_problems(True, {"type": "integer"}) == ["$ should be integer, not boolean"]


# -- the view ---------------------------------------------------------------------------------


def shown_json(value: str) -> Any:
    """The JSON a frame of the view shows (the highlighted text, tags taken out)."""
    return json.loads(html.unescape(re.sub(r"<[^>]+>", "", value)))


async def test_the_view_shows_the_json_growing_and_ends_with_the_parsed_value(
    frontend: Frontend,
) -> None:
    view = ChatView()
    answer = ipyllm.stream(
        "Describe Lima",
        provider="demo",
        base_url="http://demo.ipyllm.invalid/with/rate=150,latency=0/v1",
        schema=CITY,
    )
    transcript = await view.stream(answer)
    assert transcript.status == "done" and transcript.parsed is not None
    frames = [value for _, value in frontend.values_sent(frontend.one(view, "ipyllm-tail"))]
    assert len(frames) >= 4, len(frames)
    assert all(frame.startswith('<pre class="ipyllm-code"><code>') for frame in frames)
    values = [shown_json(frame) for frame in frames]  # every frame is JSON, indented
    sizes = [len(json.dumps(value)) for value in values]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # it grows
    assert values[-1] == transcript.parsed
    assert '<span class="nt">"population"</span>' in frames[-1]  # highlighted
    assert '\n  "population": ' in html.unescape(re.sub(r"<[^>]+>", "", frames[-1]))
    data, _ = view.static_copy()
    assert '<pre class="ipyllm-code">' in data["text/html"]
    assert data["text/markdown"].startswith("```json\n{\n  ")


async def test_a_failed_structured_answer_shows_its_text_and_the_error(
    frontend: Frontend,
) -> None:
    view = ChatView()
    answer = ipyllm.stream(
        "Describe Lima", provider="demo", base_url=FAST_DEMO, schema=CITY, max_tokens=7
    )
    transcript = await view.stream(answer)
    assert transcript.status == "error" and isinstance(transcript.error, StructuredOutputError)
    assert html.escape(transcript.text) in frontend.shown_body(view)  # as it arrived
    assert "not valid JSON" in frontend.value(view, "ipyllm-extras")


async def hostile_json(payload: str) -> AsyncIterator[str]:
    text = json.dumps({"title": payload, "items": [payload, {"note": payload}]})
    for start in range(0, len(text), 4):
        await asyncio.sleep(0)
        yield text[start : start + 4]


@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_hostile_strings_in_a_json_answer_stay_inert(frontend: Frontend, name: str) -> None:
    view = ChatView(format="json")
    await view.stream(hostile_json(PAYLOADS[name]))
    sent = [value for _, value in frontend.values_sent(frontend.one(view, "ipyllm-tail"))]
    assert sent
    for value in sent:
        assert not violations(value), (name, value)
    data, _ = view.static_copy()
    # The style sheets before the markup are ipyllm's own constants; the rest is checked.
    styles, start, markup = data["text/html"].partition('<div class="ipyllm ipyllm-static">')
    assert start and PAYLOADS[name] not in styles
    assert not violations(start + markup), name
    assert data["text/markdown"].startswith("```")  # a fenced block: no Markdown viewer's HTML


async def test_a_hostile_enum_from_the_server_stays_inert(frontend: Frontend) -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    schema = {"type": "object", "properties": {"kind": {"enum": [hostile]}}, "required": ["kind"]}
    view = ChatView()
    answer = ipyllm.stream("Hi", provider="demo", base_url=FAST_DEMO, schema=schema)
    transcript = await view.stream(answer)
    assert transcript.parsed == {"kind": hostile}
    assert not violations(frontend.shown_body(view))
    assert "&lt;script&gt;" in frontend.shown_body(view)


# -- partial JSON -----------------------------------------------------------------------------


def test_json_is_highlighted_line_by_line_as_pygments_highlights_it_whole() -> None:
    value = {"rows": [{"name": f"n{i} <b>&", "x": i / 3, "ok": i % 2 == 0, "no": None,
                       "tags": ["a", 'b\n"', "é😀"]} for i in range(40)]}  # fmt: skip
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    whole = highlight_code(pretty, "json")
    expected = sanitize_html(f'<pre class="ipyllm-code"><code>{whole}</code></pre>')
    assert json_html(json.dumps(value), final=True) == expected


def test_partial_json_reads_every_prefix() -> None:
    text = json.dumps({"a": [1, 2.5, "x\\y"], "b": {"c": True, "d": None}, "e": "é"})
    shown = []
    for end in range(1, len(text) + 1):
        shown.append(partial_json(text[:end]))
    assert shown[-1] == json.loads(text)
    assert partial_json('{"a": [1, 2.5, "x\\\\') == {"a": [1, 2.5, "x\\"]}
    assert partial_json('{"b": {"c": tr') == {"b": {}}
    assert partial_json('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(ValueError):
        partial_json("Sure! Here is the JSON:")


# -- many answers -----------------------------------------------------------------------------


@pytest.fixture
def teaching() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as running:
        yield running


def test_map_to_frame_expands_the_parsed_fields_into_columns(teaching: ServerThread) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"city": ["Paris", "Lima", "Oslo"], "name": ["a", "b", "c"]})
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "population": {"type": "integer", "minimum": 1, "maximum": 10},
            "sunny": {"type": "boolean"},
        },
        "required": ["name", "population", "sunny"],
    }
    result = ipyllm.map(
        "Describe {city}",
        frame,
        provider="ollama",
        base_url=teaching.url,
        schema=schema,
    )
    table = result.to_frame()
    assert list(table.columns) == [
        "city", "name", "name_parsed", "population", "sunny", "answer", "status",
        "finish_reason", "input_tokens", "output_tokens", "cost", "error",
    ]  # fmt: skip
    assert table["name_parsed"].tolist() == ["demo name"] * 3
    assert str(table["population"].dtype) == "Int64" and str(table["sunny"].dtype) == "boolean"
    parsed = [t.parsed for t in result.transcripts if t is not None]
    assert table["population"].tolist() == [p["population"] for p in parsed]
