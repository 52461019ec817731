"""The demo model's structured answers: a deterministic value that fits a JSON Schema.

Every value is made from the schema and a seed (the prompt's hash), so the same question
always gets the same JSON and different rows of a batch get different values: strings
(named after their property, within their lengths, in their format), numbers and
integers within their bounds, booleans, enums and consts, arrays within their item
counts, nested objects with every property, local ``$ref``s, ``anyOf``/``oneOf`` (the
first choice that is not null), ``allOf`` (merged). Gemini's capitalised OpenAPI types
read the same. A ``pattern`` is not followed.
"""

from __future__ import annotations

import hashlib
from typing import Any

_MAX_DEPTH = 12
_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T12:00:00Z",
    "time": "12:00:00",
    "email": "demo@example.com",
    "uri": "https://example.com/demo",
    "url": "https://example.com/demo",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
}


def example_for(schema: dict[str, Any], seed: int) -> Any:
    """A value that fits ``schema``, the same for the same schema and seed."""
    return _Maker(schema, seed).make(schema, "", 0)


class _Maker:
    def __init__(self, root: dict[str, Any], seed: int) -> None:
        self.root = root
        self.seed = seed

    def pick(self, path: str, count: int) -> int:
        """A number below ``count`` that depends on the seed and the place in the value."""
        digest = hashlib.sha256(f"{self.seed}:{path}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % max(1, count)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
            node: Any = self.root
            for key in filter(None, schema["$ref"].lstrip("#").split("/")):
                node = node.get(key) if isinstance(node, dict) else None
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**node, **rest} if isinstance(node, dict) else rest
            seen += 1
        return schema

    def make(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, dict):
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.pick(path, len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            choices = [c for c in schema.get(key) or [] if isinstance(c, dict)]
            usable = [c for c in choices if self.resolve(c).get("type") not in ("null", "NULL")]
            if usable or choices:
                return self.make((usable or choices)[0], path, depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self.resolve(part) if isinstance(part, dict) else {}
                merged = {**merged, **part, "properties": {
                    **merged.get("properties", {}), **part.get("properties", {})}}  # fmt: skip
            return self.make({**schema, **merged, "allOf": []}, path, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if str(k).lower() != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        return self.typed(str(kind).lower(), schema, path, depth)

    def typed(self, kind: str, schema: dict[str, Any], path: str, depth: int) -> Any:
        if kind == "object":
            properties = schema.get("properties") or {}
            if depth >= _MAX_DEPTH:  # a recursive schema: only what must be there
                required = set(schema.get("required") or [])
                properties = {k: v for k, v in properties.items() if k in required}
            return {
                name: self.make(sub, f"{path}.{name}", depth + 1)
                for name, sub in properties.items()
            }
        if kind == "array":
            low = int(schema.get("minItems") or 0)
            high = schema.get("maxItems")
            count = max(low, 2 if high is None else min(int(high), 2))
            if depth >= _MAX_DEPTH:
                count = low
            return [self.make(schema.get("items"), f"{path}[{i}]", depth + 1) for i in range(count)]
        if kind == "string":
            return self.string(schema, path)
        if kind == "integer":
            low, high = _bounds(schema, integer=True)
            return low + self.pick(path, high - low + 1)
        if kind == "number":
            low, high = _bounds(schema, integer=False)
            return round(low + (high - low) * self.pick(path, 1000) / 1000, 2)
        if kind == "boolean":
            return self.pick(path, 2) == 0
        if kind == "null":
            return None
        return "demo"

    def string(self, schema: dict[str, Any], path: str) -> str:
        text = _FORMATS.get(str(schema.get("format")))
        if text is None:
            name = path.rsplit(".", 1)[-1].replace("_", " ") if path else "answer"
            text = f"demo {name}"
        low = int(schema.get("minLength") or 0)
        if len(text) < low:
            text += "." * (low - len(text))
        high = schema.get("maxLength")
        return text[: int(high)] if isinstance(high, int) else text


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    step = 1 if integer else 0.01
    low = schema.get("minimum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + step
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 100
    if high is None:
        high = low + 100
    if integer:
        low, high = int(-(-low // 1)), int(high // 1)  # whole numbers within the bounds
    return low, max(low, high)


def stable_seed(messages: list[dict[str, Any]]) -> int:
    """The seed of a request's answer: the last user message's hash (stable across runs)."""
    question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return int.from_bytes(hashlib.sha256(str(question).encode()).digest()[:8], "big")
