"""What stays in the notebook: a static, sanitized copy of a finished answer.

A live widget needs its state to be saved and a widget manager to be shown;
a plain ``text/html`` + ``text/markdown`` + ``text/plain`` output renders in
JupyterLab (trusted or not), Notebook 7, VS Code, nbconvert and GitHub alike.

Math needs no network and no script there: each formula is kept twice, as MathML made
in Python (latex2mathml, then the MathML allow-list of ``_sanitize``) and as the TeX
that MathJax reads. A browser without MathJax (an exported page opened offline) shows
the MathML; where MathJax typesets the output (JupyterLab, Notebook 7, an exported page
online) ``STATIC_MATH_CSS`` shows MathJax's rendering instead, never both. Where the
stylesheet is stripped (an untrusted notebook in JupyterLab), the MathML stays hidden by
its ``hidden`` attribute and MathJax's rendering shows. TeX that cannot be converted
stays as it was: TeX for MathJax.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from .._version import __version__
from ..transcript import Transcript
from ._json import json_markdown
from ._sanitize import MATHJAX_IGNORE_CLASSES, sanitize_mathml
from ._status import status_line

# A height from %config; anything else is left out rather than written into a style.
_CSS_LENGTH = re.compile(r"\d+(\.\d+)?(px|em|rem|ex|ch|vh|%)")
# Parameter names that could carry a credential are never recorded.
_SECRET_NAME = re.compile(r"key|token|secret|password|authorization|credential", re.IGNORECASE)


def provenance(transcript: Transcript) -> dict[str, Any]:
    """Where an answer came from and how it ended; JSON-ready, never any key."""
    usage = transcript.usage
    return {
        "ipyllm": __version__,
        "provider": transcript.provider,
        "model": transcript.model,
        "served_model": transcript.served_model,
        "params": {k: v for k, v in transcript.params.items() if not _SECRET_NAME.search(k)},
        "status": transcript.status,
        "finish_reason": transcript.finish_reason,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        "time_to_first_token": _rounded(transcript.time_to_first_token),
        "elapsed": _rounded(transcript.elapsed),
        "tokens_per_second": _rounded(transcript.tokens_per_second),
        "error": None if transcript.error is None else str(transcript.error),
        "cost": transcript.cost,
    }


def static_bundle(
    transcript: Transcript,
    body_html: str,
    stylesheet: str,
    notes: list[str] | None = None,
    *,
    raw_events_html: str | None = None,
    raw_events_open: bool = False,
    max_height: str | None = None,
    error_hint: str | None = None,
    json_answer: bool | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """The output data and metadata that replace the live view when it ends.

    ``body_html`` and ``raw_events_html`` must already be safe (sanitized or escaped);
    ``max_height`` (a CSS length) keeps the live view's height limit, with a scroll bar;
    ``error_hint`` follows the error, if the answer failed (advice where it was asked);
    ``json_answer`` says the answer is JSON (default: when it was asked for with a schema).
    """
    body_html, math = _with_mathml(body_html)
    parts = [
        f"<style>{stylesheet}</style>",
        *([f"<style>{STATIC_MATH_CSS}</style>"] if math else []),
        '<div class="ipyllm ipyllm-static">',
        f'<div class="ipyllm-status ipyllm-state-{transcript.status}">'
        f"{html.escape(status_line(transcript))}</div>",
        *(f'<div class="ipyllm-note">{html.escape(note)}</div>' for note in notes or []),
    ]
    if transcript.reasoning:
        parts.append(
            "<details class='ipyllm-reasoning'><summary>Reasoning</summary>"
            f"<pre>{html.escape(transcript.reasoning)}</pre></details>"
        )
    box = ""
    if max_height and _CSS_LENGTH.fullmatch(max_height):
        box = f' style="max-height: {max_height}; overflow: auto"'
    parts.append(f'<div class="ipyllm-body ipyllm-md"{box}>{body_html}</div>')
    parts += _extras_html(transcript, error_hint, copy=True)
    if raw_events_html:
        # Open when the live view showed the panel; its end (the newest events) in view.
        parts.append(
            f"<details class='ipyllm-wire'{' open' if raw_events_open else ''}>"
            "<summary>Wire events</summary><div class='ipyllm-raw-scroll'>"
            f"<div class='ipyllm-raw'>{raw_events_html}</div></div></details>"
        )
    parts.append("</div>")
    # A structured answer is JSON: a fenced block, which no Markdown viewer reads as HTML.
    if json_answer is None:
        json_answer = transcript.schema is not None
    text = transcript.text
    markdown = json_markdown(text) if json_answer else escape_markdown(text)
    plain = [transcript.text]
    notes = _notes(transcript, error_hint, copy=True)
    if notes:
        markdown += "\n\n" + "\n\n".join(f"> {html.escape(note)}" for note in notes)
        plain += notes
    data = {
        "text/html": "".join(parts),
        "text/markdown": markdown,
        "text/plain": "\n\n".join([status_line(transcript), *plain]),
    }
    return data, {"ipyllm": provenance(transcript)}


# --------------------------------------------------------------------------- math

# MathJax's output: v3 (JupyterLab 4, Notebook 7) and v2 (nbconvert's HTML template).
_TYPESET = "mjx-container, .MathJax, .MathJax_CHTML, .MathJax_SVG, .MathJax_Display"
STATIC_MATH_CSS = (
    # No MathJax: the MathML shows; the TeX stays in the page, laid out (so that MathJax,
    # if it comes, measures it right) but clipped to nothing.
    ".ipyllm-static .ipyllm-mathml[hidden] { display: inline; }"
    " .ipyllm-static .ipyllm-tex { position: absolute; width: 1px; height: 1px;"
    " overflow: hidden; clip-path: inset(50%); white-space: nowrap; }"
    # MathJax typeset the TeX: its rendering shows, the MathML goes.
    f" .ipyllm-static .ipyllm-math:has({_TYPESET}) > .ipyllm-mathml {{ display: none; }}"
    f" .ipyllm-static .ipyllm-math:has({_TYPESET}) > .ipyllm-tex {{ position: static;"
    " width: auto; height: auto; overflow: visible; clip-path: none; white-space: normal; }"
)

# The math elements of ``_math.math_html`` after the sanitizer: their text is escaped TeX.
_MATH_ELEMENT = re.compile(
    r'<(span|div) class="ipyllm-math( ipyllm-math-display)?">'
    r"(\\[(\[])(.*?)(\\[)\]])</\1>",
    re.DOTALL,
)
_MAX_TEX = 10_000  # longer formulas stay TeX (conversion time grows with length)


def tex_to_mathml(tex: str, *, display: bool = False) -> str | None:
    """Sanitized MathML for ``tex``, or None when it cannot be converted.

    ``tex`` should already be defused (see ``_math.defuse_tex``); whatever latex2mathml
    makes of it, only the MathML allow-list's elements and attribute values are kept.
    """
    if len(tex) > _MAX_TEX:
        return None
    from latex2mathml.converter import convert

    try:
        markup = convert(tex, display="block" if display else "inline")
    except Exception:  # its own errors, RecursionError on deep nesting, anything else
        return None
    mathml = sanitize_mathml(markup)
    return mathml if mathml.startswith("<math") and mathml.endswith("</math>") else None


def _with_mathml(body_html: str) -> tuple[str, bool]:
    """``body_html`` with MathML beside the TeX of each formula; whether any was added."""
    if "ipyllm-math" not in body_html:
        return body_html, False
    added = False

    def add(match: re.Match[str]) -> str:
        nonlocal added
        tag, display, opener, body, closer = match.groups()
        mathml = tex_to_mathml(html.unescape(body), display=bool(display))
        if mathml is None:
            return match.group(0)
        added = True
        return (
            f'<{tag} class="ipyllm-math{display or ""}">'
            f'<span class="ipyllm-mathml {MATHJAX_IGNORE_CLASSES}" hidden="hidden">{mathml}</span>'
            f'<span class="ipyllm-tex">{opener}{body}{closer}</span></{tag}>'
        )

    return _MATH_ELEMENT.sub(add, body_html), added


def extras_html(transcript: Transcript, error_hint: str | None = None) -> str:
    """Tool calls, refusal and error (then ``error_hint``), escaped, for the live view and
    the static copy."""
    return "".join(_extras_html(transcript, error_hint))


def _extras_html(
    transcript: Transcript, error_hint: str | None = None, *, copy: bool = False
) -> list[str]:
    parts = []
    for call in transcript.tool_calls:
        arguments = call.parsed_arguments()
        shown = (
            json.dumps(arguments, indent=2, ensure_ascii=False)
            if arguments is not None
            else call.arguments
        )
        parts.append(
            '<div class="ipyllm-tool"><div class="ipyllm-tool-name">🔧 tool call: '
            f"{html.escape(call.name or '?')}"
            f"{' (' + html.escape(call.id) + ')' if call.id else ''}</div>"
            f"<pre>{html.escape(shown)}</pre></div>"
        )
    if transcript.refusal:
        parts.append(
            f'<div class="ipyllm-refusal">Refused: {html.escape(transcript.refusal)}</div>'
        )
    for note in _notes(transcript, error_hint, copy=copy):
        # A stop is the reader's choice and a copy mid-answer no failure: said neutrally.
        kind = "ipyllm-error" if transcript.status == "error" else "ipyllm-stopped"
        parts.append(f'<div class="{kind}">{html.escape(note)}</div>')
    return parts


def _notes(
    transcript: Transcript, error_hint: str | None = None, *, copy: bool = False
) -> list[str]:
    """The notes after the answer; ``copy``: for the static copy, not the live view."""
    if transcript.status == "error" and transcript.error is not None:
        return [f"Error: {transcript.error}" + (f"\n{error_hint}" if error_hint else "")]
    if transcript.status == "stopped":
        return ["Stopped: the answer above is partial."]
    if copy and transcript.status in ("pending", "streaming"):
        # Seen only where the live view cannot render: a copy saved mid-answer, reopened
        # after the kernel restarted (or a page that reloaded before the end saved it).
        return [PARTIAL_COPY_NOTE]
    return []


PARTIAL_COPY_NOTE = "Copied while the answer streamed: the answer so far, not its end."


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def escape_markdown(text: str) -> str:
    """Markdown that shows raw HTML as text, loads no remote image and links nowhere unsafe.

    ``<`` and ``&`` are escaped outside code (inside code they already show as
    text), images become links, and links to schemes other than http, https and
    mailto lose their target.
    """
    lines, fence = [], ""
    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if fence:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = ""
            lines.append(line)
            continue
        if marker:
            fence = marker.group(1)
            lines.append(line)
            continue
        lines.append(_escape_outside_code_spans(line))
    return "\n".join(lines)


def _escape_outside_code_spans(line: str) -> str:
    out, last = [], 0
    for span in _CODE_SPAN.finditer(line):
        out.append(_escape_prose(line[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(_escape_prose(line[last:]))
    return "".join(out)


_LINK_TARGET = re.compile(r"\]\(([^)]*)")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_SAFE_SCHEMES = {"http", "https", "mailto"}


def _escape_prose(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace("![", "[🖼 ")
    return _LINK_TARGET.sub(_safe_link_target, text)


def _safe_link_target(match: re.Match[str]) -> str:
    target = "".join(ch for ch in match.group(1) if ch > " " and ch != "\x7f")
    scheme = _SCHEME.match(target)
    if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES:
        return "](#unsafe-link-removed"
    return match.group(0)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
