"""JSON parsing for the hot path: orjson when it is there, the standard library otherwise.

orjson parses a typical stream chunk about three times faster than ``json``. It is
stricter (no NaN, no lone surrogates, no integers past 64 bits), so whatever it
rejects is parsed again by ``json``: results never depend on which one is installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_fast_loads: Callable[[str | bytes], Any] | None
try:
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency, but keep working without it
    _fast_loads = None


def loads(text: str | bytes) -> Any:
    """Parse JSON; raises ValueError (``json.JSONDecodeError``) if it is not JSON."""
    if _fast_loads is not None:
        try:
            return _fast_loads(text)
        except ValueError:
            pass  # maybe only too strict for orjson: let json decide
    try:
        return json.loads(text)
    except RecursionError:  # nested deeper than json recurses: hostile input, not JSON to use
        raise ValueError("JSON nested too deeply") from None
