"""Math in Markdown: the markdown-it math rules, the HTML MathJax will typeset, TeX made safe.

Inline ``$...$``/``$$...$$``/``\\(...\\)``/``\\[...\\]`` and display blocks (``$$``/``\\[``
starting a line) become ``ipyllm-math`` elements holding ``\\(...\\)``/``\\[...\\]``, the only
delimiters MathJax sees. Macros that could link, style or load code are defused first, and
literal ``$``/``\\`` in prose are fenced off so MathJax does not find math that is not there.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.dollarmath import dollarmath_plugin

from ._sanitize import MATHJAX_IGNORE_CLASSES

__all__ = ["defuse_tex", "find_unescaped", "math_html", "math_plugin", "prose_html"]

# --------------------------------------------------------------------------- math safety

# MathJax macros that create links, set classes/styles/ids/attributes, load extensions or
# build arbitrary characters/elements. Model output must not reach MathJax with them.
_DANGEROUS_TEX_MACROS = frozenset(
    {
        "href",
        "url",
        "class",
        "style",
        "cssId",
        "unicode",
        "require",
        "data",
        "mmlToken",
        "bbox",
        "texttip",
        "mathtip",
        "toggle",
        "tooltip",
    }
)
# Control words (\name) and control symbols (\x, including "\\"), so "\\href" is read as
# "\\" + "href" exactly as TeX reads it.
_TEX_CONTROL_SEQUENCE = re.compile(r"\\(?:[A-Za-z]+|.)", re.DOTALL)


def _defuse_macro(match: re.Match[str]) -> str:
    name = match.group()[1:]
    if name in _DANGEROUS_TEX_MACROS or name.startswith("html"):
        return name  # dropping the backslash leaves harmless letters
    return match.group()


def defuse_tex(tex: str) -> str:
    """Neutralize MathJax macros that could link, style or load code."""
    if "\\" not in tex:
        return tex
    return _TEX_CONTROL_SEQUENCE.sub(_defuse_macro, tex)


# Literal "$" and "\" in prose are wrapped so JupyterLab's MathJax, which also scans plain
# text for $...$ and \(...\), cannot turn prices or stray delimiters into math.
_TEX_TRIGGER = re.compile(r"[$\\]")
_IGNORED_TRIGGER = rf'<span class="{MATHJAX_IGNORE_CLASSES}">\g<0></span>'


def prose_html(text: str) -> str:
    """Escaped text in which MathJax finds no delimiters."""
    html = escapeHtml(defuse_tex(text))
    if "$" in html or "\\" in html:
        html = _TEX_TRIGGER.sub(_IGNORED_TRIGGER, html)
    return html


def math_html(tex: str, *, display: bool, block: bool = False) -> str:
    """The element MathJax typesets for ``tex`` (inline, display in a paragraph, or a block)."""
    body = escapeHtml(defuse_tex(tex.strip()))
    if not display:
        return f'<span class="ipyllm-math">\\({body}\\)</span>'
    if block:
        return f'<div class="ipyllm-math ipyllm-math-display">\\[{body}\\]</div>\n'
    # Display math inside a paragraph stays a <span>: a <div> inside <p> would be re-nested
    # by the HTML parser differently for a block and for the whole document.
    return f'<span class="ipyllm-math ipyllm-math-display">\\[{body}\\]</span>'


# --------------------------------------------------------------------------- parser rules

_DISPLAY_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"))


def _backslashes_before(text: str, index: int) -> int:
    count = 0
    while index - count > 0 and text[index - count - 1] == "\\":
        count += 1
    return count


def find_unescaped(text: str, needle: str, start: int, limit: int) -> int:
    """Index of the first ``needle`` in ``text[start:limit]`` not escaped by a backslash, or -1."""
    while (found := text.find(needle, start, limit)) >= 0:
        if _backslashes_before(text, found) % 2 == 0:
            return found
        start = found + 1
    return -1


def _display_math_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """``$$ ... $$`` and ``\\[ ... \\]`` starting a line (may interrupt a paragraph).

    Like a fence, an unclosed block runs on, but only to the next blank line (LaTeX forbids
    blank lines in display math). That keeps block boundaries stable while streaming: a later
    closing delimiter can never merge already-complete blocks into a math block.
    """
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    first = state.src[
        state.bMarks[start_line] + state.tShift[start_line] : state.eMarks[start_line]
    ]
    delimiters = next(((o, c) for o, c in _DISPLAY_DELIMITERS if first.startswith(o)), None)
    if delimiters is None:
        return False
    opener, closer = delimiters
    rest = first[len(opener) :].rstrip()
    closed_at_once = rest.endswith(closer)
    if closer in (rest[: -len(closer)] if closed_at_once else rest):
        return False  # "$$a$$ and more": inline math inside a paragraph
    if silent:
        return True

    lines = [rest[: -len(closer)] if closed_at_once else rest]
    next_line, closed, reached_end = start_line + 1, closed_at_once, False
    while not closed:
        if next_line >= end_line:
            reached_end = True
            break
        begin = state.bMarks[next_line] + state.tShift[next_line]
        if begin >= state.eMarks[next_line] or state.sCount[next_line] < state.blkIndent:
            break  # blank line, or a line outside the enclosing list item
        line = state.src[begin : state.eMarks[next_line]].rstrip()
        next_line += 1
        closed = line.endswith(closer)
        lines.append(line[: -len(closer)] if closed else line)

    state.line = next_line
    token = state.push("math_block", "math", 0)
    token.block = True
    token.content = "\n".join(lines)
    token.markup = opener
    token.map = [start_line, next_line]
    token.meta = {"unterminated": reached_end}
    return True


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    """``\\(...\\)`` and ``\\[...\\]`` inside a paragraph (before Markdown eats the backslash)."""
    start = state.pos
    if state.src[start] != "\\" or start + 1 >= state.posMax or state.src[start + 1] not in "([":
        return False
    is_display = state.src[start + 1] == "["
    end = find_unescaped(state.src, "\\]" if is_display else "\\)", start + 2, state.posMax)
    if end <= start + 2:
        return False
    if not silent:
        token = state.push("math_inline_double" if is_display else "math_inline", "math", 0)
        token.content = state.src[start + 2 : end]
        token.markup = state.src[start : start + 2]
    state.pos = end + 2
    return True


def math_plugin(md: MarkdownIt) -> None:
    """Add the math rules: tokens ``math_inline``, ``math_inline_double`` and ``math_block``."""
    # Inline $...$ only when no space follows the opening "$" and no digit follows the
    # closing one, so "$5 and $10" stays prose.
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    # Our display block replaces the plugin's: it also reads \[ ... \], and an unclosed one
    # is a block already, so the block does not change kind when its closer arrives.
    md.block.ruler.disable("math_block")
    md.block.ruler.before(
        "fence",
        "ipyllm_display_math",
        _display_math_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.inline.ruler.before("escape", "ipyllm_bracket_math", _bracket_math_inline)
