"""JSON answers: the value so far while it streams, pretty-printed and highlighted.

A structured answer arrives as JSON cut anywhere (``{"name": "Ad``). A tolerant partial
parser reads what is there: jiter's partial mode (``trailing-strings``: an open string
shows as far as it goes) where jiter is installed, else a pure-Python parser here that
does the same (open strings kept, unfinished keys, numbers and literals left out, open
brackets closed). The value is shown as indented JSON, highlighted by Pygments through
the same highlighter and sanitizer as code blocks; text that is not JSON is shown as
typed, so nothing received is ever hidden.
"""

from __future__ import annotations

import contextlib
import json
import re
from functools import lru_cache
from typing import Any

from ._highlight import highlight_code
from ._plain import pre_html
from ._sanitize import sanitize_html

_FENCE_OPEN = re.compile(r"\A\s*```[\w-]*[ \t]*\n?")
_FENCE_CLOSE = re.compile(r"\n?```\s*\Z")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]*")
_LITERALS = (("true", True), ("false", False), ("null", None))
_HALF_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\Z")
_MISSING: Any = object()
_NOTHING: Any = object()


def without_fence(text: str) -> str:
    """JSON that a model wrapped in a Markdown code fence, unwrapped."""
    opened = _FENCE_OPEN.match(text)
    if not opened:
        return text
    return _FENCE_CLOSE.sub("", text[opened.end() :])


def partial_json(text: str) -> Any:
    """The value of the JSON ``text`` so far (complete or cut short); ValueError if it is
    not JSON at all."""
    text = without_fence(text)
    if not text.strip():
        raise ValueError("no JSON yet")
    try:
        from jiter import from_json
    except ImportError:  # Pyodide, or jiter not installed: the same rules, in Python
        return parse_partial(text)
    return from_json(text.encode(), partial_mode="trailing-strings")


def parse_partial(text: str) -> Any:
    """The pure-Python partial parser (what jiter's ``trailing-strings`` mode gives)."""
    reader = _Reader(text)
    value = reader.value()
    reader.space()
    if value is _MISSING or reader.at < len(text):
        raise ValueError(f"not JSON at character {reader.at}")
    return value


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def space(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
            self.at += 1

    def ended(self) -> bool:
        self.space()
        return self.at >= len(self.text)

    def value(self) -> Any:
        if self.ended():
            return _MISSING
        char = self.text[self.at]
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char == '"':
            return self.string()
        if char in "-0123456789":
            return self.number()
        rest = self.text[self.at : self.at + 5]
        for word, meaning in _LITERALS:
            if rest.startswith(word):
                self.at += len(word)
                return meaning
            if word.startswith(rest) and self.at + len(rest) == len(self.text):
                self.at = len(self.text)
                return _MISSING  # a literal cut short: left out, as jiter does
        raise ValueError(f"unexpected {char!r} at character {self.at}")

    def object(self) -> dict[str, Any]:
        self.at += 1
        found: dict[str, Any] = {}
        while not self.ended():
            if self.text[self.at] == "}":
                self.at += 1
                return found
            if self.text[self.at] != '"':
                raise ValueError(f"expected a key at character {self.at}")
            key, closed = self._string()
            if not closed or self.ended():
                return found  # a key cut short, or without its value yet
            if self.text[self.at] != ":":
                raise ValueError(f"expected ':' at character {self.at}")
            self.at += 1
            value = self.value()
            if value is _MISSING:
                return found
            found[key] = value
            if self.ended():
                return found
            if self.text[self.at] == ",":
                self.at += 1
            elif self.text[self.at] != "}":
                raise ValueError(f"expected ',' or '}}' at character {self.at}")
        return found

    def array(self) -> list[Any]:
        self.at += 1
        found: list[Any] = []
        while not self.ended():
            if self.text[self.at] == "]":
                self.at += 1
                return found
            value = self.value()
            if value is _MISSING:
                return found
            found.append(value)
            if self.ended():
                return found
            if self.text[self.at] == ",":
                self.at += 1
            elif self.text[self.at] != "]":
                raise ValueError(f"expected ',' or ']' at character {self.at}")
        return found

    def string(self) -> str:
        return self._string()[0]

    def _string(self) -> tuple[str, bool]:
        text = self.text
        start = index = self.at + 1
        cut = len(text)
        while index < len(text):
            char = text[index]
            if char == "\\":
                length = 6 if text[index + 1 : index + 2] == "u" else 2
                if index + length > len(text):
                    cut = index  # an escape cut short: left out
                    break
                index += length
                continue
            if char == '"':
                self.at = index + 1
                return json.loads(text[start - 1 : index + 1]), True
            index += 1
        self.at = len(text)  # open to the end: kept as far as it goes
        body = _HALF_PAIR.sub("", text[start:cut])  # half a surrogate pair waits for the rest
        return json.loads(f'"{body}"'), False

    def number(self) -> Any:
        run = _NUMBER_CHARS.match(self.text, self.at)
        assert run is not None  # the pattern matches the empty string too
        self.at = run.end()
        if _NUMBER.fullmatch(run.group()):
            return json.loads(run.group())
        if self.at >= len(self.text):
            return _MISSING  # cut short ("1.", "-", "2e"): left out
        raise ValueError(f"not a number: {run.group()!r}")


def json_html(text: str, *, final: bool = False) -> str:
    """Sanitized HTML for a JSON answer: indented and highlighted while it parses (as a
    whole when ``final``, so far while it streams), else the text as typed."""
    if not text.strip():
        return ""
    try:
        value = json.loads(without_fence(text)) if final else partial_json(text)
    except (ValueError, RecursionError):
        return pre_html(text)
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    lines = "".join(_line_html(line) + "\n" for line in pretty.split("\n"))
    return f'<pre class="ipyllm-code"><code>{lines}</code></pre>'


@lru_cache(maxsize=4096)
def _line_html(line: str) -> str:
    """One line of indented JSON, highlighted and sanitized. Line by line, because a value
    that grows changes only its last lines: the others come from this cache, so a frame
    costs what its new lines cost (indented JSON has no line break inside a token)."""
    return sanitize_html(highlight_code(line, "json").removesuffix("\n"))


def json_markdown(text: str) -> str:
    """A JSON answer as Markdown: a fenced ``json`` block (indented when it parses)."""
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(without_fence(text)), indent=2, ensure_ascii=False)
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}json\n{text}\n{fence}"


class StreamingJSON:
    """The JSON counterpart of StreamingMarkdown: nothing is frozen (a value can change
    anywhere as it grows), the whole value is the live tail, re-rendered lazily."""

    def __init__(self) -> None:
        self.frozen: list[str] = []
        self._parts: list[str] = []
        self._html: str | None = ""

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def append(self, delta: str) -> None:
        self._parts.append(delta)
        self._html = None

    @property
    def tail_html(self) -> str:
        if self._html is None:
            self._html = json_html(self.text)
        return self._html

    @property
    def html(self) -> str:
        return self.tail_html

    def finish(self) -> str:
        return json_html(self.text, final=True)
