"""Small pieces of the teaching app's answers: the model lists, and request targets as
the log may show them (query values that could be keys replaced)."""

from __future__ import annotations

from typing import Any

from ipyllm.server._demo import DEMO_MODELS

# Query parameters whose values are safe to log; any other value may be a key.
_LOGGABLE_QUERY = {"alt", "beta"}


def model_list(family: str) -> dict[str, Any]:
    if family == "ollama":
        return {
            "models": [
                {
                    "name": model,
                    "model": model,
                    "modified_at": "2026-01-01T00:00:00Z",
                    "size": 0,
                    "digest": model.encode().hex(),
                    "details": {
                        "format": "demo",
                        "family": "demo",
                        "parameter_size": "0B",
                        "quantization_level": "none",
                    },
                }
                for model in DEMO_MODELS
            ]
        }
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": 1767225600, "owned_by": "ipyllm"}
            for model in DEMO_MODELS
        ],
    }


def redacted(target: str) -> str:
    """The target as it may be logged: query values that could be keys are replaced."""
    path, mark, query = target.partition("?")
    if not mark:
        return path
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and name not in _LOGGABLE_QUERY:
            value = "REDACTED"
        pairs.append(f"{name}{eq}{value}")
    return f"{path}?{'&'.join(pairs)}"
