"""Structured output: the schema an answer must fit, in the form each provider asks for.

:func:`as_schema` takes a JSON Schema dict or a pydantic model class (duck-typed by its
``model_json_schema`` and ``model_validate_json``: pydantic is never imported here) and
gives a :class:`Schema`. The dialects put it into their request: OpenAI's
``response_format`` (strict where the schema allows it), Responses' ``text.format``,
Anthropic's forced tool, Gemini's ``responseJsonSchema`` (``responseSchema``, an OpenAPI
subset, for models older than 2.5), Ollama's ``format``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")
# The keywords of Gemini's OpenAPI-subset Schema (responseSchema).
_OPENAPI_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
_MAX_DEPTH = 32  # deeper $refs than this are taken for a recursive schema


@dataclass(frozen=True)
class Schema:
    """What a structured answer must fit: a name, the JSON Schema, and the model class if any."""

    name: str
    json: dict[str, Any]
    model: Any = None
    """The pydantic model class the schema came from (its ``model_validate_json`` checks
    the answer and makes the instance), or None for a plain JSON Schema."""

    def strict(self) -> dict[str, Any] | None:
        """OpenAI's strict form of the schema, or None when it cannot be strict."""
        return strict_form(self.json)


def as_schema(value: Any) -> Schema | None:
    """A :class:`Schema` from a JSON Schema dict or a pydantic model class (None: no schema)."""
    if value is None or isinstance(value, Schema):
        return value
    duck = ("model_json_schema", "model_validate_json")
    if isinstance(value, type) and all(callable(getattr(value, name, None)) for name in duck):
        model: Any = value
        return _checked(Schema(_name(value.__name__), dict(model.model_json_schema()), model))
    if isinstance(value, Mapping):
        schema = dict(value)
        return _checked(Schema(_name(str(schema.get("title") or "answer")), schema))
    raise ConfigurationError(
        f"a schema is a JSON Schema dict or a pydantic model class, not {type(value).__name__}"
    )


def _name(text: str) -> str:
    return _NOT_IN_NAME.sub("_", text).strip("_")[:64] or "answer"


def _checked(schema: Schema) -> Schema:
    try:
        json.dumps(schema.json)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the schema is not JSON: {exc}") from None
    root = schema.json
    if root.get("type") != "object" and not ("properties" in root and "type" not in root):
        raise ConfigurationError(
            "the schema's root must be an object, as the providers require: wrap a list or "
            "a value in one, e.g. {'type': 'object', 'properties': {'items': ...}}"
        )
    return schema


def resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The subschema a local ``$ref`` ("#/$defs/Name") points at."""
    if not ref.startswith("#"):
        raise ConfigurationError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for key in filter(None, ref[1:].split("/")):
        key = key.replace("~1", "/").replace("~0", "~")
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise ConfigurationError(f"the schema's $ref {ref!r} points at nothing")
    return node


def _subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[Any] = list((node.get("properties") or {}).values())
    for key in ("items", "additionalProperties", "not"):
        found.append(node.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        found += node.get(key) or []
    for key in ("$defs", "definitions"):
        found += (node.get(key) or {}).values()
    return [child for child in found if isinstance(child, dict)]


def strict_form(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema with ``additionalProperties: false`` on every object, as OpenAI's strict
    mode wants, or None when an object leaves a property optional (strict mode would make
    it required) or allows other properties."""
    result = copy.deepcopy(schema)
    pending = [result]
    while pending:
        node = pending.pop()
        if node.get("type") == "object" or "properties" in node:
            if set(node.get("properties") or {}) - set(node.get("required") or []):
                return None
            if node.get("additionalProperties", False) is not False:
                return None
            node["additionalProperties"] = False
        pending += _subschemas(node)
    return result


def openapi_form(schema: dict[str, Any]) -> dict[str, Any]:
    """Gemini's ``responseSchema``: $refs inlined, type lists and null options as
    ``nullable``, types in capitals, keywords outside its OpenAPI subset left out."""

    def convert(node: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise ConfigurationError("the schema is recursive; this model's responseSchema is not")
        if "$ref" in node:
            beside = {key: value for key, value in node.items() if key != "$ref"}
            node = {**resolve_ref(schema, node["$ref"]), **beside}
        out: dict[str, Any] = {}
        kind = node.get("type")
        options = [o for o in node.get("anyOf") or node.get("oneOf") or [] if isinstance(o, dict)]
        if isinstance(kind, list):
            out["nullable"] = "null" in kind
            kind = next((k for k in kind if k != "null"), "string")
        if any(option.get("type") == "null" for option in options):
            out["nullable"] = True
            options = [option for option in options if option.get("type") != "null"]
            if len(options) == 1:
                return {**convert(options[0], depth + 1), **out}
        if "const" in node:
            out["enum"] = [node["const"]]
        for key, value in node.items():
            if key not in _OPENAPI_KEYS or key in ("anyOf",):
                continue
            if key == "properties":
                out[key] = {name: convert(sub, depth + 1) for name, sub in value.items()}
            elif key == "items" and isinstance(value, dict):
                out[key] = convert(value, depth + 1)
            elif key != "type":
                out[key] = value
        if options:
            out["anyOf"] = [convert(option, depth + 1) for option in options]
        if isinstance(kind, str):
            out["type"] = kind.upper()
        return out

    return convert(schema, 0)
