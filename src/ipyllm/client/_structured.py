"""A structured answer at its end: the text parsed as JSON and checked against its schema.

A pydantic model class checks and builds its own instance (``model_validate_json``); a
JSON Schema dict is checked here, by the keywords structured outputs use (types, enums,
const, properties, required, additionalProperties, items, lengths, bounds, pattern,
anyOf/oneOf/allOf/not, local $refs). Anything wrong is a
:class:`~ipyllm.StructuredOutputError` naming each problem; the text stays in the
transcript, as it arrived.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..dialects import Schema, resolve_ref
from ..errors import StructuredOutputError
from ..transcript import Transcript

_FENCE = re.compile(r"\A```[\w-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.S)
_MAX_PROBLEMS = 10
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def structured_value(transcript: Transcript, schema: Schema) -> Any:
    """The answer's value, or a StructuredOutputError that says what is wrong with it."""
    text = transcript.text.strip()
    fenced = _FENCE.match(text)  # some models wrap JSON in a code fence whatever they are told
    if fenced:
        text = fenced["body"].strip()
    if not text:
        said = f": {transcript.refusal}" if transcript.refusal else ""
        raise _error(transcript, f"the model gave no JSON answer{said}", [])
    if schema.model is not None:
        try:
            return schema.model.model_validate_json(text)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            problems = _pydantic_problems(exc)
            invalid = "not valid JSON" if "json_invalid" in str(exc) else "does not fit the schema"
            raise _error(transcript, f"the answer {invalid} of {schema.name}", problems) from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _error(transcript, "the answer is not valid JSON", [str(exc)]) from None
    problems = schema_problems(value, schema.json)
    if problems:
        raise _error(transcript, f"the answer does not fit the schema {schema.name}", problems)
    return value


def _error(transcript: Transcript, message: str, problems: list[str]) -> StructuredOutputError:
    if transcript.cut_off == "max_tokens":
        message += " (it was cut off at its token limit: raise max_tokens)"
    shown = problems[:_MAX_PROBLEMS]
    if shown:
        more = len(problems) - len(shown)
        message += ": " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return StructuredOutputError(
        message + ". The text is kept in transcript.text.",
        problems=problems,
        provider=transcript.provider,
        transcript=transcript,
    )


def _pydantic_problems(exc: Exception) -> list[str]:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [str(exc)]
    problems = []
    for error in errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "$"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return problems


def schema_problems(
    value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "$"
) -> list[str]:
    """Every place ``value`` breaks ``schema`` (empty: it fits)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return schema_problems(value, resolve_ref(root, schema["$ref"]), root, path)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is(value, name) for name in kinds):
            return [f"{path} should be {' or '.join(map(str, kinds))}, not {_json_type(value)}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path} should be one of {json.dumps(schema['enum'])[:200]}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path} should be {json.dumps(schema['const'])[:200]}")
    if isinstance(value, dict):
        problems += _object(value, schema, root, path)
    elif isinstance(value, list):
        problems += _array(value, schema, root, path)
    elif isinstance(value, str):
        problems += _string(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        problems += _number(value, schema, path)
    problems += _combinations(value, schema, root, path)
    return problems


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(kind, object))


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "object", "array", "string"):
        if _is(value, name):
            return name
    return "integer" if _is(value, "integer") else "number"


def _object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any],
            path: str) -> list[str]:  # fmt: skip
    required = schema.get("required", [])
    problems = [f"{path} lacks {name!r}" for name in required if name not in value]
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = f"{path}.{name}"
        if name in properties:
            problems += schema_problems(item, properties[name], root, where)
        elif extra is False:
            problems.append(f"{path} has {name!r}, which the schema does not allow")
        elif isinstance(extra, dict):
            problems += schema_problems(item, extra, root, where)
    return problems


def _array(value: list[Any], schema: dict[str, Any], root: dict[str, Any],
           path: str) -> list[str]:  # fmt: skip
    problems = []
    if len(value) < schema.get("minItems", 0):
        problems.append(f"{path} should have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(f"{path} should have at most {schema['maxItems']} items")
    prefix = schema.get("prefixItems") or []
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items")
        if isinstance(sub, dict):
            problems += schema_problems(item, sub, root, f"{path}[{index}]")
    return problems


def _string(value: str, schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    if len(value) < schema.get("minLength", 0):
        problems.append(f"{path} should have at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{path} should have at most {schema['maxLength']} characters")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{path} should match {schema['pattern']!r}")
    return problems


def _number(value: float, schema: dict[str, Any], path: str) -> list[str]:
    problems = []
    for key, sign in _BOUNDS:
        bound = schema.get(key)
        if isinstance(bound, int | float) and not _holds(value, sign, bound):
            problems.append(f"{path} should be {sign} {bound}")
    return problems


_BOUNDS = (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
           ("exclusiveMaximum", "<"))  # fmt: skip


def _holds(value: float, sign: str, bound: float) -> bool:
    if sign == ">=":
        return value >= bound
    if sign == "<=":
        return value <= bound
    return value > bound if sign == ">" else value < bound


def _combinations(value: Any, schema: dict[str, Any], root: dict[str, Any],
                  path: str) -> list[str]:  # fmt: skip
    problems = []
    for sub in schema.get("allOf") or []:
        problems += schema_problems(value, sub, root, path)
    if schema.get("anyOf") and all(
        schema_problems(value, sub, root, path) for sub in schema["anyOf"]
    ):
        problems.append(f"{path} fits none of the schema's anyOf choices")
    if schema.get("oneOf"):
        fitting = sum(not schema_problems(value, sub, root, path) for sub in schema["oneOf"])
        if fitting != 1:
            problems.append(f"{path} should fit exactly one oneOf choice, fits {fitting}")
    if isinstance(schema.get("not"), dict) and not schema_problems(
        value, schema["not"], root, path
    ):
        problems.append(f"{path} should not fit the schema's 'not'")
    return problems
