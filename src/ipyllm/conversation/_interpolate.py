"""``{name}`` in a prompt, filled in from the notebook's namespace, safely for code.

Prompts often contain code, full of braces that are not placeholders. So only
``{name}``, ``{name.attr}`` and ``{name[index]}`` (with a literal index) whose
name exists in the namespace are replaced; every other brace stays as written.
``{{`` and ``}}`` stand for literal braces. Nothing is ever ``eval``-ed.

Values are shown as a prompt should show them: a DataFrame or Series as a bounded
Markdown table (``_values``), an image (a matplotlib figure, a PIL or IPython image) as
an image sent with the prompt, ``[image N]`` in the text where it was named; anything
else as ``str(value)``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..client import image_part, is_image
from ..errors import InterpolationError, IpyllmError
from ..options import default_value
from ._values import as_prompt_text

_PLACEHOLDER = re.compile(
    r"\{\{|\}\}"  # escaped braces
    r"|\{([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\[\]{}]*\])*)\}"
)
_ACCESS = re.compile(r"\.([A-Za-z_]\w*)|\[([^\[\]{}]*)\]")


@dataclass
class Filled:
    """A prompt with its placeholders filled in, and the images they named (encoded)."""

    text: str
    images: list[dict[str, Any]] = field(default_factory=list)


def fill(
    prompt: str,
    namespace: Mapping[str, Any],
    *,
    table_rows: int | None = None,
    table_chars: int | None = None,
) -> Filled:
    """Fill in ``prompt``: tables within ``table_rows`` rows and ``table_chars`` characters
    (default: the options' defaults), each image encoded once however often it is named."""
    rows = default_value("table_rows") if table_rows is None else table_rows
    chars = default_value("table_chars") if table_chars is None else table_chars
    images: list[dict[str, Any]] = []
    numbers: dict[int, int] = {}  # id(value) -> its image number

    def replace(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        name, accessors = match.group(1), match.group(2)
        if name not in namespace:
            return match.group(0)  # not a variable: a brace in code or prose
        try:
            value = _resolve(namespace[name], accessors)
            if not is_image(value):
                return as_prompt_text(value, rows=rows, chars=chars)
            if id(value) not in numbers:
                images.append(image_part(value))
                numbers[id(value)] = len(images)
            return f"[image {numbers[id(value)]}]"
        except Exception as exc:
            reason = str(exc) if isinstance(exc, IpyllmError) else f"{type(exc).__name__}: {exc}"
            raise InterpolationError(
                f"cannot fill in {match.group(0)}: {reason} "
                "(write {{ and }} for literal braces, or use --no-interpolate)"
            ) from None

    return Filled(_PLACEHOLDER.sub(replace, prompt), images)


def interpolate(prompt: str, namespace: Mapping[str, Any]) -> str:
    """The prompt's text with its placeholders filled in (see :func:`fill`, which also
    gives the images a prompt names; here an image is refused)."""
    filled = fill(prompt, namespace)
    if filled.images:
        raise InterpolationError(
            "the prompt names an image: fill() gives its text and its images, to send together"
        )
    return filled.text


def _resolve(value: Any, accessors: str) -> Any:
    for attribute, index in _ACCESS.findall(accessors):
        value = getattr(value, attribute) if attribute else value[_literal_index(index)]
    return value


def _literal_index(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()  # a bare word: a string key, as in {config[model]}
