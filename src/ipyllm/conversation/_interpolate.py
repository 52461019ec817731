"""``{name}`` in a prompt, filled in from the notebook's namespace, safely for code.

Prompts often contain code, full of braces that are not placeholders. So only
``{name}``, ``{name.attr}`` and ``{name[index]}`` (with a literal index) whose
name exists in the namespace are replaced; every other brace stays as written.
``{{`` and ``}}`` stand for literal braces. Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InterpolationError

_PLACEHOLDER = re.compile(
    r"\{\{|\}\}"  # escaped braces
    r"|\{([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\[\]{}]*\])*)\}"
)
_ACCESS = re.compile(r"\.([A-Za-z_]\w*)|\[([^\[\]{}]*)\]")


def interpolate(prompt: str, namespace: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        name, accessors = match.group(1), match.group(2)
        if name not in namespace:
            return match.group(0)  # not a variable: a brace in code or prose
        try:
            return str(_resolve(namespace[name], accessors))
        except Exception as exc:
            raise InterpolationError(
                f"cannot fill in {match.group(0)}: {type(exc).__name__}: {exc} "
                "(write {{ and }} for literal braces, or use --no-interpolate)"
            ) from None

    return _PLACEHOLDER.sub(replace, prompt)


def _resolve(value: Any, accessors: str) -> Any:
    for attribute, index in _ACCESS.findall(accessors):
        value = getattr(value, attribute) if attribute else value[_literal_index(index)]
    return value


def _literal_index(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()  # a bare word: a string key, as in {config[model]}
