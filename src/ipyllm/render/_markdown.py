"""Safe GitHub-flavoured Markdown for LLM output: one-shot and incremental rendering.

Pipeline: markdown-it-py (``html=False``: raw HTML in model output stays text) with GFM tables,
strikethrough, task lists, autolinks and math, our own render rules (Pygments code, alignment
classes, MathJax-ready math, images as links), then the nh3 allow-list of ``_sanitize``.

``StreamingMarkdown`` freezes every complete top-level block (rendered once) and re-renders only
the last one, "healed" so half-typed Markdown does not flicker. ``finish()`` equals
``render_markdown`` of the whole text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_core import block as core_block_rule
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from ._highlight import PYGMENTS_CSS, highlight_code
from ._sanitize import MATHJAX_IGNORE_CLASSES, sanitize_html

try:
    from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
except ImportError:  # mdit-py-plugins < 0.5: bare URLs stay text
    gfm_autolink_plugin = None

__all__ = ["STYLESHEET", "StreamingMarkdown", "render_markdown", "stylesheet"]

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


def _prose_html(text: str) -> str:
    html = escapeHtml(defuse_tex(text))
    if "$" in html or "\\" in html:
        html = _TEX_TRIGGER.sub(_IGNORED_TRIGGER, html)
    return html


def _math_html(tex: str, *, display: bool, block: bool = False) -> str:
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


def _find_unescaped(text: str, needle: str, start: int, limit: int) -> int:
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
    end = _find_unescaped(state.src, "\\]" if is_display else "\\)", start + 2, state.posMax)
    if end <= start + 2:
        return False
    if not silent:
        token = state.push("math_inline_double" if is_display else "math_inline", "math", 0)
        token.content = state.src[start + 2 : end]
        token.markup = state.src[start : start + 2]
    state.pos = end + 2
    return True


# --------------------------------------------------------------------------- render rules

RenderRule = Callable[[RendererHTML, Sequence[Token], int, OptionsDict, EnvType], str]

_WEB_URL = re.compile(r"https?:", re.IGNORECASE)
_LINK_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_STREAMING = "ipyllm_streaming"  # env key: rendering the live tail of a stream


def _render_text(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _prose_html(tokens[idx].content)


def _render_math_inline(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _math_html(tokens[idx].content, display=False)


def _render_math_inline_display(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _math_html(tokens[idx].content, display=True)


def _render_math_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if env.get(_STREAMING) and token.meta.get("unterminated"):
        # Half-typed display math: show the source until it closes instead of letting
        # MathJax flash errors on incomplete TeX (pre is never typeset).
        source = escapeHtml(token.markup + token.content)
        return f'<pre class="ipyllm-math-pending">{source}</pre>\n'
    return _math_html(token.content, display=True, block=True)


def _render_fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).split(maxsplit=1)
    language = info[0] if info else ""
    if env.get(_STREAMING):
        # The live tail is re-rendered every frame: highlight only its complete lines, which
        # highlight_code caches, and append the line being typed as plain text.
        split = token.content.rfind("\n") + 1
        code = highlight_code(token.content[:split], language) + escapeHtml(token.content[split:])
    else:
        code = highlight_code(token.content, language)
    return f'<pre class="ipyllm-code"><code>{code}</code></pre>\n'


def _render_cell_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # nh3 strips style attributes, so alignment travels as a class.
    token = tokens[idx]
    style = token.attrs.pop("style", None)
    if isinstance(style, str) and style.startswith("text-align:"):
        token.attrSet("class", "ipyllm-align-" + style.removeprefix("text-align:"))
    return self.renderToken(tokens, idx, options, env)


def _render_link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    href = tokens[idx].attrGet("href")
    if isinstance(href, str) and _LINK_URL.match(href):
        return self.renderToken(tokens, idx, options, env)
    # Any other scheme, or a relative URL (which would point into the Jupyter server):
    # keep the text, drop the link.
    closing = next(t for t in tokens[idx + 1 :] if t.type == "link_close")
    closing.tag = "span"
    return "<span>"


def _render_task_checkbox(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # With html=False the only html_inline tokens are the tasklists plugin's checkboxes;
    # a character needs no <input> in the allow-list.
    content = tokens[idx].content
    if "task-list-item-checkbox" not in content:
        return escapeHtml(content)
    mark = "☑" if 'checked="checked"' in content else "☐"
    return f'<span class="ipyllm-task">{mark}</span>'


def _image_rule(allow_images: bool) -> RenderRule:
    def render_image(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        src = token.attrGet("src")
        src = src if isinstance(src, str) and _WEB_URL.match(src) else ""
        alt = self.renderInlineAsText(token.children, options, env)
        if allow_images and src:
            return f'<img src="{escapeHtml(src)}" alt="{escapeHtml(alt)}">'
        # Images off: remote images leak data on load, so show a link the user can choose.
        label = _prose_html(f"🖼 {alt}".rstrip())
        if src:
            return f'<a class="ipyllm-image-link" href="{escapeHtml(src)}">{label}</a>'
        return f'<span class="ipyllm-image-link">{label}</span>'

    return render_image


@cache
def _parser(allow_images: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    # Inline $...$ only when no space follows the opening "$" and no digit follows the
    # closing one, so "$5 and $10" stays prose.
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    md.block.ruler.disable("math_block")
    md.block.ruler.before(
        "fence",
        "ipyllm_display_math",
        _display_math_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.inline.ruler.before("escape", "ipyllm_bracket_math", _bracket_math_inline)
    if gfm_autolink_plugin is not None and hasattr(md.inline, "add_terminator_char"):
        md.use(gfm_autolink_plugin)  # needs markdown-it-py >= 4.1
    rules: dict[str, RenderRule] = {
        "text": _render_text,
        "math_inline": _render_math_inline,
        "math_inline_double": _render_math_inline_display,
        "math_block": _render_math_block,
        "fence": _render_fence,
        "code_block": _render_fence,
        "th_open": _render_cell_open,
        "td_open": _render_cell_open,
        "link_open": _render_link_open,
        "html_inline": _render_task_checkbox,
        "image": _image_rule(allow_images),
    }
    for name, rule in rules.items():
        md.add_render_rule(name, rule)
    return md


def _normalize(text: str) -> str:
    """markdown-it's own input normalization, applied early so line offsets match it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _render_tokens(
    md: MarkdownIt, tokens: Sequence[Token], env: EnvType, allow_images: bool
) -> str:
    return sanitize_html(md.renderer.render(tokens, md.options, env), allow_images=allow_images)


def render_markdown(text: str, *, allow_images: bool = False) -> str:
    """Render Markdown to sanitized HTML in one go."""
    md = _parser(allow_images)
    env: EnvType = {}
    return _render_tokens(md, md.parse(text, env), env, allow_images)


# --------------------------------------------------------------------------- tail healing
#
# Applied only to the live tail while streaming; never to frozen blocks, never at finish().
# Everything still goes through markdown-it (html=False) and nh3, so healing cannot make
# output unsafe: it only changes how half-typed Markdown looks for a moment.

_TABLE_ROW = re.compile(r" {0,3}\|")
_TABLE_DELIMITER_SO_FAR = re.compile(r" {0,3}\|[\s|:-]*$")
_TRAILING_MARKER_RUN = re.compile(r"(?<!\\)[*_~`]+$")
_INLINE_SYNTAX = re.compile(r"[\\`$\[\]<*_~]")
_AUTOLINK = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\s<>]*>")


def _line_count(source: str) -> int:
    return source.count("\n") + (0 if source.endswith("\n") or not source else 1)


def _last_leaf(tokens: Sequence[Token]) -> int | None:
    return next((i for i in range(len(tokens) - 1, -1, -1) if tokens[i].nesting == 0), None)


def _without_last_lines(source: str, count: int) -> str:
    lines = source.split("\n")
    if source.endswith("\n"):
        lines.pop()
    kept = lines[:-count]
    return "\n".join(kept) + ("\n" if kept else "")


def _pending_table_rows(source: str) -> int:
    """Trailing lines that look like a table header still waiting for its delimiter row."""
    lines = source.split("\n")
    if source.endswith("\n"):
        lines.pop()
    rows = 0
    for line in reversed(lines):
        if not _TABLE_ROW.match(line):
            break
        rows += 1
    if rows == 1 or (rows == 2 and _TABLE_DELIMITER_SO_FAR.match(lines[-1])):
        return rows
    return 0


def _without_pending_lines(source: str, tokens: Sequence[Token]) -> str | None:
    """The source minus trailing lines whose meaning is not known yet, or None."""
    leaf_index = _last_leaf(tokens)
    if leaf_index is None:
        return None
    leaf, parent = tokens[leaf_index], tokens[leaf_index - 1] if leaf_index else None
    lines, partial = _line_count(source), not source.endswith("\n")
    # "Text\n-" (or "=") being typed: not a setext heading until the line is complete.
    if (
        partial
        and parent is not None
        and parent.type == "heading_open"
        and parent.markup in ("-", "=")
        and parent.map
        and parent.map[1] == lines
    ):
        return _without_last_lines(source, 1)
    # A fence or $$ opener still being typed: wait for its info string / first line.
    if partial and leaf.type in ("fence", "math_block") and leaf.map and leaf.map[0] == lines - 1:
        return _without_last_lines(source, 1)
    # "| a | b |" before its "|---|---|" row: hide it rather than flash it as a paragraph.
    if (
        leaf.type == "inline"
        and parent is not None
        and parent.type == "paragraph_open"
        and leaf.map
        and leaf.map[1] == lines
    ):
        rows = _pending_table_rows(source)
        if rows:
            return _without_last_lines(source, rows)
    return None


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def _run_length(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] == text[start]:
        end += 1
    return end - start


def _closers(openers: list[list[Any]]) -> str:
    return "".join(char * count for char, count in reversed(openers))


def _nearest_opener(openers: list[list[Any]], char: str) -> int | None:
    return next((i for i in range(len(openers) - 1, -1, -1) if openers[i][0] == char), None)


def _track_emphasis(text: str, start: int, run: int, openers: list[list[Any]]) -> None:
    """CommonMark's flanking rules, enough to know which runs are still open at the end."""
    char = text[start]
    before = text[start - 1] if start else " "
    after = text[start + run] if start + run < len(text) else " "
    left = not after.isspace() and (
        not _is_punctuation(after) or before.isspace() or _is_punctuation(before)
    )
    right = not before.isspace() and (
        not _is_punctuation(before) or after.isspace() or _is_punctuation(after)
    )
    can_open, can_close = left, right
    if char == "_":
        can_open = left and (not right or _is_punctuation(before))
        can_close = right and (not left or _is_punctuation(after))
    while can_close and run and (match := _nearest_opener(openers, char)) is not None:
        del openers[match + 1 :]  # delimiters between an opener and its closer are dead
        used = min(run, openers[match][1])
        openers[match][1] -= used
        run -= used
        if not openers[match][1]:
            openers.pop()
    if can_open and run:
        openers.append([char, run])


def _link_destination_end(text: str, start: int) -> int:
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == ")":
            if not depth:
                return index
            depth -= 1
        elif char == "(":
            depth += 1
        index += 1
    return -1


def _dollar_math_end(text: str, start: int) -> int:
    """End of the $/$$ math starting at ``start``; ``start + 1`` if "$" is literal; -1 if open."""
    if text.startswith("$$", start):
        end = _find_unescaped(text, "$$", start + 2, len(text))
        return end + 2 if end >= 0 else -1
    after = text[start + 1 : start + 2]
    if not after or after.isspace() or (start and text[start - 1].isdigit()):
        return start + 1
    end = _find_unescaped(text, "$", start + 1, len(text))
    if end < 0 or text[end - 1].isspace() or text[end + 1 : end + 2].isdigit():
        return start + 1  # unclosed single "$" stays literal: it is usually a price
    return end + 1


def _heal_scan(text: str) -> tuple[str, str]:
    """(text to keep, closers to append) for inline Markdown cut off at its end."""
    openers: list[list[Any]] = []
    brackets: list[int] = []
    index = 0
    while (found := _INLINE_SYNTAX.search(text, index)) is not None:
        index = found.start()
        char = text[index]
        if char == "\\":
            if text.startswith(("\\(", "\\["), index):
                closer = "\\)" if text[index + 1] == "(" else "\\]"
                end = _find_unescaped(text, closer, index + 2, len(text))
                if end < 0:  # unclosed \( or \[: hide the half-typed math
                    return text[:index].rstrip(), _closers(openers)
                index = end + 2
            else:
                index += 2
        elif char == "`":
            run = _run_length(text, index)
            end = _find_backtick_run(text, index + run, run)
            if end < 0:  # unclosed code span: close it
                return text, "`" * run + _closers(openers)
            index = end + run
        elif char == "$":
            end = _dollar_math_end(text, index)
            if end < 0:  # unclosed $$: hide the half-typed math
                return text[:index].rstrip(), _closers(openers)
            index = end
        elif char == "[":
            brackets.append(index)
            index += 1
        elif char == "]":
            if brackets and text.startswith("(", index + 1):
                label_start = brackets.pop()
                end = _link_destination_end(text, index + 2)
                if end < 0:  # [text](http://exa : show the text, hide the half URL
                    link_start = label_start - (label_start > 0 and text[label_start - 1] == "!")
                    return text[:link_start] + text[label_start + 1 : index], _closers(openers)
                index = end + 1
            else:
                if brackets:
                    brackets.pop()
                index += 1
        elif char == "<":
            autolink = _AUTOLINK.match(text, index)
            index = autolink.end() if autolink else index + 1
        else:  # * _ ~
            run = _run_length(text, index)
            if char != "~" or run == 2:
                _track_emphasis(text, index, run, openers)
            index += run
    return text, _closers(openers)


def _find_backtick_run(text: str, start: int, run: int) -> int:
    while (found := text.find("`" * run, start)) >= 0:
        length = _run_length(text, found)
        if length == run:
            return found
        start = found + length
    return -1


def heal_inline(content: str) -> str:
    """Close what a half-typed paragraph left open: emphasis, strikethrough, code, links."""
    # A marker run at the very end is hidden until we know whether it opens or closes.
    text = _TRAILING_MARKER_RUN.sub("", content.rstrip()).rstrip()
    kept, closers = _heal_scan(text)
    return kept + closers


def _run_core_rules(rules: Sequence[Callable[[StateCore], None]], state: StateCore) -> StateCore:
    for rule in rules:
        rule(state)
    return state


def _parse_healed(md: MarkdownIt, source: str, env: EnvType) -> list[Token]:
    """md.parse with the healing rules applied between block and inline parsing."""
    rules = md.core.ruler.getRules("")
    split = rules.index(core_block_rule) + 1
    state = _run_core_rules(rules[:split], StateCore(source, md, env))
    trimmed = _without_pending_lines(state.src, state.tokens)
    if trimmed is not None:
        state = _run_core_rules(rules[:split], StateCore(trimmed, md, env))
    leaf_index = _last_leaf(state.tokens)
    if leaf_index is not None:
        leaf = state.tokens[leaf_index]
        # Only a paragraph/heading/cell that runs to the end is still being typed.
        if leaf.type == "inline" and leaf.map and leaf.map[1] == _line_count(state.src):
            leaf.content = heal_inline(leaf.content)
    return _run_core_rules(rules[split:], state).tokens


# --------------------------------------------------------------------------- streaming


class _ReferenceLog(dict[str, Any]):
    """``env["references"]`` that records labels looked up before being defined."""

    def __init__(self, known: dict[str, Any]) -> None:
        super().__init__(known)
        self.misses: set[str] = set()

    def get(self, label: str, default: Any = None) -> Any:
        if label and label not in self:
            self.misses.add(label)
        return super().get(label, default)


def _top_level_block_offsets(md: MarkdownIt, source: str) -> list[int]:
    tokens: list[Token] = []
    md.block.parse(source, md, {}, tokens)
    starts = [t.map[0] for t in tokens if t.level == 0 and t.nesting >= 0 and t.map]
    offsets, line, position = [], 0, 0
    for start in starts:
        while line < start:
            position = source.index("\n", position) + 1
            line += 1
        offsets.append(position)
    return offsets


class StreamingMarkdown:
    """Incremental Markdown renderer for a stream of text deltas.

    ``frozen`` holds the sanitized HTML of complete top-level blocks (it only grows and each
    entry is rendered once); ``tail_html`` is the rest, re-rendered lazily, so a frame costs
    what the tail costs, whatever the length of the answer. ``finish()`` always equals
    ``render_markdown`` of the whole text. In one rare case the frozen blocks are not its
    prefix: a ``[label]: url`` definition arriving after a frozen block that used
    ``[label]`` (LLMs almost never write them; task items ``[x]`` and citations ``[1]``
    without a definition are not affected). Then ``rerendered`` is true and ``finish()``
    renders the whole text again.
    """

    def __init__(self, *, allow_images: bool = False) -> None:
        self._allow_images = allow_images
        self._md = _parser(allow_images)
        self._received: list[str] = []
        self._unmerged: list[str] = []
        self._carried_cr = ""  # a final "\r" may be the first half of "\r\n"
        self._live = ""  # normalized source not frozen yet
        self._scanned = 0  # length of _live's complete lines already checked for blocks
        self._frozen: list[str] = []
        self._frozen_html = ""
        self._missed_labels: set[str] = set()  # used by frozen blocks, undefined then
        self.rerendered = False
        self._definitions: dict[str, Any] = {}
        self._tail_html: str | None = ""  # None: text changed since last render
        self._final_html = ""
        self._finished = False

    def append(self, delta: str) -> None:
        """Buffer a delta; rendering waits until the HTML is read."""
        if self._finished:
            raise RuntimeError("append() after finish()")
        if delta:
            self._received.append(delta)
            self._unmerged.append(delta)
            self._tail_html = None

    @property
    def text(self) -> str:
        """Everything appended so far, exactly as received."""
        if len(self._received) > 1:
            self._received = ["".join(self._received)]
        return self._received[0] if self._received else ""

    @property
    def frozen(self) -> list[str]:
        """Sanitized HTML of complete blocks; only grows, entries never change."""
        self._sync()
        return list(self._frozen)

    @property
    def tail_html(self) -> str:
        """Sanitized HTML of everything after ``frozen`` (healed while streaming)."""
        if self._tail_html is None:
            self._sync()
            self._tail_html = self._render_live_tail()
        return self._tail_html

    @property
    def html(self) -> str:
        """``frozen`` plus ``tail_html`` as one string."""
        tail = self.tail_html  # first: it may freeze more blocks
        return self._frozen_html + tail

    def finish(self) -> str:
        """Render the rest without healing; the result equals ``render_markdown(text)``."""
        if not self._finished:
            self._merge()
            self._live += _normalize(self._carried_cr)
            self._carried_cr = ""
            self._finished = True
            # Rendering the last block also registers the link definitions it holds.
            self._tail_html = self._render_block(self._live)[0] if self._live else ""
            self._final_html = self._frozen_html + self._tail_html
            if self.rerendered:  # a late definition changed frozen blocks: start over
                self._final_html = render_markdown(self.text, allow_images=self._allow_images)
        return self._final_html

    def _merge(self) -> None:
        if not self._unmerged:
            return
        raw = self._carried_cr + "".join(self._unmerged)
        self._unmerged.clear()
        self._carried_cr = "\r" if raw.endswith("\r") else ""
        self._live += _normalize(raw.removesuffix("\r"))

    def _sync(self) -> None:
        if self._finished:
            return
        self._merge()
        self._freeze_complete_blocks()

    def _freeze_complete_blocks(self) -> None:
        # Only complete lines decide block boundaries: a half-typed line can still change
        # whether it interrupts the block before it ("#" vs "#tag", "```" vs "```a`").
        complete = self._live.rfind("\n") + 1
        if complete <= self._scanned:
            return
        self._scanned = complete
        offsets = _top_level_block_offsets(self._md, self._live[:complete])
        if len(offsets) < 2:
            return
        for begin, end in pairwise([0, *offsets[1:]]):
            self._commit(self._live[begin:end])
        self._live = self._live[offsets[-1] :]
        self._scanned = complete - offsets[-1]

    def _commit(self, source: str) -> None:
        html, misses = self._render_block(source)
        self._missed_labels |= misses
        self._frozen.append(html)
        self._frozen_html += html

    def _render_block(self, source: str) -> tuple[str, set[str]]:
        references = _ReferenceLog(self._definitions)
        env: EnvType = {"references": references}
        html = _render_tokens(self._md, self._md.parse(source, env), env, self._allow_images)
        new_labels = references.keys() - self._definitions.keys()
        if new_labels:
            self._definitions.update({label: references[label] for label in new_labels})
            if new_labels & self._missed_labels:
                self.rerendered = True
        return html, references.misses

    def _render_live_tail(self) -> str:
        if not self._live:
            return ""
        env: EnvType = {"references": _ReferenceLog(self._definitions), _STREAMING: True}
        tokens = _parse_healed(self._md, self._live, env)
        return _render_tokens(self._md, tokens, env, self._allow_images)


# --------------------------------------------------------------------------- stylesheet

_BASE_CSS = """\
.ipyllm-md { line-height: 1.5; overflow-wrap: anywhere; }
.ipyllm-md table { border-collapse: collapse; margin: 0.5em 0; }
.ipyllm-md th, .ipyllm-md td {
  border: 1px solid var(--jp-border-color1, #8886); padding: 0.25em 0.6em; }
.ipyllm-md th { background: var(--jp-layout-color2, #8881); }
/* tr > ...: more specific than JupyterLab's rendered-HTML table rules (the static copy). */
.ipyllm-md tr > .ipyllm-align-left { text-align: left; }
.ipyllm-md tr > .ipyllm-align-center { text-align: center; }
.ipyllm-md tr > .ipyllm-align-right { text-align: right; }
.ipyllm-md pre.ipyllm-code code { background: transparent; padding: 0; }
.ipyllm-md li.task-list-item { list-style: none; }
.ipyllm-md ul.contains-task-list { padding-left: 1.2em; }
.ipyllm-md pre.ipyllm-code, .ipyllm-md pre.ipyllm-math-pending {
  background: var(--jp-layout-color2, #8881); border-radius: 4px;
  padding: 0.5em 0.75em; overflow-x: auto; }
.ipyllm-md pre.ipyllm-math-pending { opacity: 0.6; white-space: pre-wrap; }
.ipyllm-md code { font-family: var(--jp-code-font-family, monospace); font-size: 0.92em; }
.ipyllm-md :not(pre) > code {
  background: var(--jp-layout-color2, #8881); border-radius: 3px; padding: 0.05em 0.3em; }
.ipyllm-md .ipyllm-math-display { display: block; margin: 0.5em 0; overflow-x: auto; }
.ipyllm-md blockquote {
  border-left: 3px solid var(--jp-border-color2, #8886); margin-left: 0; padding-left: 0.8em;
  color: var(--jp-ui-font-color2, inherit); }
.ipyllm-reasoning {
  color: var(--jp-ui-font-color2, #888); border-left: 3px solid var(--jp-border-color2, #8886);
  padding-left: 0.8em; font-size: 0.95em; }
.ipyllm-reasoning > summary { cursor: pointer; font-style: italic; }
.ipyllm-tool {
  font-family: var(--jp-code-font-family, monospace); font-size: 0.9em;
  border: 1px solid var(--jp-border-color2, #8886); border-radius: 4px;
  padding: 0.3em 0.6em; margin: 0.4em 0; }
.ipyllm-tool > summary { cursor: pointer; }
"""

# CSS for the HTML above; selectors are scoped to a container with class "ipyllm-md".
STYLESHEET: str = _BASE_CSS + PYGMENTS_CSS + "\n"


def stylesheet() -> str:
    """The stylesheet as a ``<style>`` element (trusted: add it outside the sanitizer)."""
    return f"<style>{STYLESHEET}</style>"
