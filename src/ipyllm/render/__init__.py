"""Layer 5, rendering: Markdown, math, highlighting and sanitizing to safe HTML.

Everything a view shows passes through here: :class:`StreamingMarkdown` renders
an answer as it grows (complete blocks are frozen, only the live tail is re-parsed
and healed), :func:`render_markdown` renders it at once with the same result, and
every piece of HTML is sanitized by an allow-list. :func:`static_bundle` makes the
static copy that stays in a saved notebook; :func:`status_line` is the one-line
summary. Nothing here knows widgets, HTTP or tasks.
"""

from __future__ import annotations

from ._highlight import highlight_code
from ._markdown import StreamingMarkdown, render_markdown
from ._plain import PlainText, pre_html
from ._sanitize import sanitize_html
from ._static import escape_markdown, extras_html, provenance, static_bundle
from ._status import status_line
from ._style import STYLESHEET

__all__ = [
    "STYLESHEET",
    "PlainText",
    "StreamingMarkdown",
    "escape_markdown",
    "extras_html",
    "highlight_code",
    "pre_html",
    "provenance",
    "render_markdown",
    "sanitize_html",
    "static_bundle",
    "status_line",
]
