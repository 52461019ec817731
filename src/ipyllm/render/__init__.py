"""Layer 5, rendering: Markdown, math, highlighting and sanitizing to safe HTML.

Everything a view shows passes through here: :class:`StreamingMarkdown` renders
an answer as it grows (complete blocks are frozen, only the live tail is re-parsed
and healed), :func:`render_markdown` renders it at once with the same result, and
every piece of HTML is sanitized by an allow-list (``ALLOWED_TAGS``,
``ALLOWED_URL_SCHEMES``), by nh3 or, where it cannot load, a pure-Python stand-in
(:func:`sanitizer` says which, :func:`use_sanitizer` switches). :func:`static_bundle`
makes the static copy that stays in a saved notebook (with math also as MathML,
:func:`tex_to_mathml`, kept by its own allow-list, :func:`sanitize_mathml`);
:func:`status_line` is the one-line summary; a copy taken mid-answer says so
(``PARTIAL_COPY_NOTE``). :class:`StreamingJSON` shows a structured
answer as it grows (a partial JSON parser, :func:`partial_json`; the value indented and
highlighted, :func:`json_html`). ``STYLESHEET`` styles all of it, ``MARKDOWN_CSS`` only
what the renderer emits.
Nothing here knows widgets, HTTP or tasks.
"""

from __future__ import annotations

from ._heal import heal_inline
from ._highlight import highlight_code
from ._json import StreamingJSON, json_html, json_markdown, parse_partial, partial_json
from ._parse import render_markdown
from ._plain import PlainText, pre_html
from ._sanitize import (
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    SANITIZERS,
    sanitize_html,
    sanitize_mathml,
    sanitizer,
    use_sanitizer,
)
from ._static import (
    PARTIAL_COPY_NOTE,
    escape_markdown,
    extras_html,
    provenance,
    static_bundle,
    tex_to_mathml,
)
from ._status import status_line
from ._streaming import StreamingMarkdown
from ._style import MARKDOWN_CSS, STYLESHEET, markdown_stylesheet

__all__ = [
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "MARKDOWN_CSS",
    "PARTIAL_COPY_NOTE",
    "SANITIZERS",
    "STYLESHEET",
    "PlainText",
    "StreamingJSON",
    "StreamingMarkdown",
    "escape_markdown",
    "extras_html",
    "heal_inline",
    "highlight_code",
    "json_html",
    "json_markdown",
    "markdown_stylesheet",
    "parse_partial",
    "partial_json",
    "pre_html",
    "provenance",
    "render_markdown",
    "sanitize_html",
    "sanitize_mathml",
    "sanitizer",
    "static_bundle",
    "status_line",
    "tex_to_mathml",
    "use_sanitizer",
]
