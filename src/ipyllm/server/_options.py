"""Per-request options carried in the URL: ``/with/k=v,k=v/<provider path>``.

Putting them in the path lets a notebook pick a fault with nothing but a base URL,
whatever client library it uses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

PREFIX = "/with/"


class OptionError(ValueError):
    """An option string the server cannot honour (answered with HTTP 400)."""


@dataclass(frozen=True)
class RequestOptions:
    """Everything one request asked for in its ``/with/`` prefix."""

    raw: str = ""
    # Pacing and content: always apply.
    rate: float | None = None
    latency: float | None = None
    words: int | None = None
    split: int | str | None = None  # a piece size, "random", or "event"
    seed: int = 0
    delay: float = 0.0
    retry_after: str | None = None
    retry_after_ms: int | None = None
    body: str = "json"
    stall: float = 3600.0
    times: int | None = None
    error_style: str | None = None  # another server's in-stream error, for error_after
    # Faults: apply only to the first ``times`` requests with this option string.
    replay: str | None = None
    status: int | None = None
    html: bool = False
    empty: bool = False
    error_after: int | None = None
    drop_after: int | None = None
    drop_after_bytes: int | None = None
    stall_after: int | None = None
    malformed_after: int | None = None
    after_end: str | None = None  # "done" or "junk", sent after the stream's end event
    whole: bool = False  # the non-streamed JSON answer, even when a stream was asked for

    def without_faults(self) -> RequestOptions:
        return dataclasses.replace(self, **{name: _DEFAULTS[name] for name in FAULT_KEYS})


FAULT_KEYS = (
    "replay",
    "status",
    "html",
    "empty",
    "error_after",
    "drop_after",
    "drop_after_bytes",
    "stall_after",
    "malformed_after",
    "after_end",
    "whole",
)
# Every field has a plain default; Any because each field's type differs.
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RequestOptions)}


def split_target(path: str) -> tuple[str, str]:
    """Split ``/with/<options>/rest`` into (option string, ``/rest``)."""
    if not path.startswith(PREFIX):
        return "", path
    options, slash, rest = path[len(PREFIX) :].partition("/")
    return options, slash + rest


def parse_options(raw: str) -> RequestOptions:
    values: dict[str, Any] = {"raw": raw}
    for item in filter(None, raw.split(",")):
        key, eq, text = item.partition("=")
        key, text = unquote(key).strip(), unquote(text).strip()
        if key not in _PARSERS:
            known = ", ".join(sorted(_PARSERS))
            raise OptionError(f"unknown option {key!r} in /with/{raw}; known options: {known}")
        if not eq:
            raise OptionError(f"option {key!r} needs a value ({key}=...)")
        try:
            values[key] = _PARSERS[key](text)
        except ValueError as exc:
            raise OptionError(f"bad value for option {key}={text!r}: {exc}") from None
    return RequestOptions(**values)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be a whole number >= 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if math.isnan(value) or value < 0:
        raise ValueError("must be a number >= 0")
    return value


def _finite_seconds(text: str) -> float:
    value = _seconds(text)
    if math.isinf(value):
        raise ValueError("must be finite")
    return value


def _retry_after(text: str) -> str:
    _finite_seconds(text)
    return text


def _status(text: str) -> int:
    value = int(text)
    if not 400 <= value <= 599:
        raise ValueError("must be an error status between 400 and 599")
    return value


def _split(text: str) -> int | str:
    if text in ("random", "event"):
        return text
    value = int(text)
    if value < 1:
        raise ValueError("must be 'random', 'event' or a piece size >= 1")
    return value


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError("must be 1 or 0")


def _body_kind(text: str) -> str:
    if text not in ("json", "html", "empty"):
        raise ValueError("must be json, html or empty")
    return text


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError("must be " + " or ".join(allowed))
        return text

    return parse


def _times(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "rate": _seconds,  # tokens per second; 0 or inf means no pacing
    "latency": _finite_seconds,
    "words": _count,
    "split": _split,
    "seed": int,
    "delay": _finite_seconds,
    "retry_after": _retry_after,
    "retry_after_ms": _count,
    "body": _body_kind,
    "stall": _finite_seconds,
    "times": _times,
    "replay": str,
    "status": _status,
    "html": _flag,
    "empty": _flag,
    "error_after": _count,
    "drop_after": _count,
    "drop_after_bytes": _count,
    "stall_after": _count,
    "malformed_after": _count,
    "error_style": _choice("llamacpp", "openrouter"),
    "after_end": _choice("done", "junk"),
    "whole": _flag,
}
