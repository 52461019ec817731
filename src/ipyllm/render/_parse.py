"""The Markdown parser and its render rules: Markdown text to sanitized HTML in one go.

markdown-it-py with ``html=False`` (raw HTML in model output stays text), GFM tables,
strikethrough, task lists, bare-URL autolinks and math (``_math``); render rules for Pygments
code, table alignment as classes, MathJax-ready math and images as links; then the nh3
allow-list of ``_sanitize``. ``_streaming`` renders through the same rules, block by block,
with :func:`reusing_parser`, which skips what earlier parses of the growing text settled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.parser_block import ParserBlock
from markdown_it.renderer import RendererHTML
from markdown_it.ruler import Ruler
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_core import inline as core_inline_rule
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.tasklists import tasklists_plugin

from ._highlight import highlight_code
from ._math import math_html, math_plugin, prose_html
from ._sanitize import sanitize_html

_gfm_autolink_plugin: Callable[[MarkdownIt], None] | None
try:
    from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin as _gfm_autolink_plugin
except ImportError:  # mdit-py-plugins < 0.5: bare URLs stay text
    _gfm_autolink_plugin = None

__all__ = [
    "INLINES",
    "LIST_ITEMS",
    "STREAMING",
    "Inlines",
    "ListItems",
    "ReferenceLog",
    "copy_tokens",
    "normalize",
    "parser",
    "render_markdown",
    "render_tokens",
    "reusing_parser",
]

# --------------------------------------------------------------------------- render rules

RenderRule = Callable[[RendererHTML, Sequence[Token], int, OptionsDict, EnvType], str]

_WEB_URL = re.compile(r"https?:", re.IGNORECASE)
_LINK_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
STREAMING = "ipyllm_streaming"  # env key: rendering the live tail of a stream


def _render_text(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return prose_html(tokens[idx].content)


def _render_math_inline(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return math_html(tokens[idx].content, display=False)


def _render_math_inline_display(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return math_html(tokens[idx].content, display=True)


def _render_math_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if env.get(STREAMING) and token.meta.get("unterminated"):
        # Half-typed display math: show the source until it closes instead of letting
        # MathJax flash errors on incomplete TeX (pre is never typeset).
        source = escapeHtml(token.markup + token.content)
        return f'<pre class="ipyllm-math-pending">{source}</pre>\n'
    return math_html(token.content, display=True, block=True)


def _render_fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).split(maxsplit=1)
    language = info[0] if info else ""
    if env.get(STREAMING):
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
        label = prose_html(f"🖼 {alt}".rstrip())
        if src:
            return f'<a class="ipyllm-image-link" href="{escapeHtml(src)}">{label}</a>'
        return f'<span class="ipyllm-image-link">{label}</span>'

    return render_image


# --------------------------------------------------------------------------- parser


@cache
def parser(allow_images: bool) -> MarkdownIt:
    """The shared parser; one per ``allow_images``, since the image rule depends on it."""
    return _new_parser(allow_images)


def _new_parser(allow_images: bool) -> MarkdownIt:
    """A parser of its own with the rules of :func:`parser`, for one that extends it."""
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.use(math_plugin)
    if _gfm_autolink_plugin is not None and hasattr(md.inline, "add_terminator_char"):
        md.use(_gfm_autolink_plugin)  # needs markdown-it-py >= 4.1
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


def normalize(text: str) -> str:
    """markdown-it's own input normalization, applied early so line offsets match it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def render_tokens(md: MarkdownIt, tokens: Sequence[Token], env: EnvType, allow_images: bool) -> str:
    """Sanitized HTML of parsed tokens."""
    return sanitize_html(md.renderer.render(tokens, md.options, env), allow_images=allow_images)


def render_markdown(text: str, *, allow_images: bool = False) -> str:
    """Render Markdown to sanitized HTML in one go."""
    md = parser(allow_images)
    env: EnvType = {}
    return render_tokens(md, md.parse(text, env), env, allow_images)


# --------------------------------------------------------------------------- reuse

LIST_ITEMS = "ipyllm_list_items"  # env key: the ListItems of the growing text being parsed
INLINES = "ipyllm_inlines"  # env key: the Inlines of the growing text being parsed


class ReferenceLog(dict[str, Any]):
    """``env["references"]`` that records labels looked up before being defined."""

    def __init__(self, known: dict[str, Any]) -> None:
        super().__init__(known)
        self.misses: set[str] = set()

    def get(self, label: str, default: Any = None) -> Any:
        if label and label not in self:
            self.misses.add(label)
        return super().get(label, default)


def copy_tokens(tokens: Iterable[Token]) -> list[Token]:
    """Deep copies (later rules and render rules change tokens in place), made field by field:
    three times faster than through Token's constructor."""
    copies = []
    for token in tokens:
        copy = Token.__new__(Token)
        copy.type, copy.tag, copy.nesting = token.type, token.tag, token.nesting
        copy.attrs = dict(token.attrs)
        copy.map = None if token.map is None else list(token.map)
        copy.level = token.level
        copy.children = None if token.children is None else copy_tokens(token.children)
        copy.content, copy.markup, copy.info = token.content, token.markup, token.info
        copy.meta = dict(token.meta)
        copy.block, copy.hidden = token.block, token.hidden
        copies.append(copy)
    return copies


def _line_is_complete(state: StateBlock, line: int) -> bool:
    return line < state.lineMax and state.eMarks[line] < len(state.src)


# An item's content as markdown-it's list rule sets it up: its first line and level, and
# the indents and marks the rule derived from the lines before and the marker line.
_ItemKey = tuple[int, int, int, int, int, int, int, str]


@dataclass
class _Item:
    key: _ItemKey
    state: StateBlock
    end: int  # the line the content stopped at
    tight: bool  # state.tight the content left
    first: int  # its tokens are state.tokens[first:last]
    last: int


class ListItems:
    """Block tokens of the complete list items of a growing text, replayed by later parses.

    A long list is the usual last block of an answer. An item is complete once the marker
    line of the next item of its list is complete: that line ends every block inside the
    item (a list marker terminates them all, whatever follows it), so its tokens depend on
    no later text. markdown-it's own list rule still decides everything between items
    (where the list ends, tight or loose, the start number): the tokens are exactly those
    of a full parse. Kept are only items of lists nested in list items alone (block quotes
    re-mark their lines), none defining a link (a replay would not register it).
    """

    def __init__(self) -> None:
        self.done: dict[_ItemKey, tuple[int, bool, list[Token]]] = {}  # key -> end, tight
        self.previous: _Item | None = None  # the item parsed last, maybe complete now
        self.in_items = False  # every enclosing tokenize() is the root or an item's

    def clear(self) -> None:
        """The live source was cut at its start: line numbers changed."""
        self.done.clear()
        self.previous = None

    def tokenize(self, parse: ParserBlock, state: StateBlock, start: int, end: int) -> None:
        enclosing = self.in_items
        tokens = state.tokens
        self.in_items = not state.level or (
            enclosing and bool(tokens) and tokens[-1].type == "list_item_open"
        )
        try:
            if state.level and self.in_items:
                self._item(parse, state, start, end)
            else:
                ParserBlock.tokenize(parse, state, start, end)
        finally:
            self.in_items = enclosing

    def _item(self, parse: ParserBlock, state: StateBlock, start: int, end: int) -> None:
        tokens = state.tokens
        previous, self.previous = self.previous, None
        if (
            previous is not None
            and previous.state is state
            and previous.end == start
            and previous.last == len(tokens) - 2  # then its list_item_close: the same list
            and _line_is_complete(state, start)
            and "]:" not in state.src[state.bMarks[previous.key[0]] : state.eMarks[start]]
        ):
            kept = copy_tokens(tokens[previous.first : previous.last])
            self.done[previous.key] = (previous.end, previous.tight, kept)
        key = (
            start,
            state.level,
            state.blkIndent,
            state.listIndent,
            state.bMarks[start],
            state.tShift[start],
            state.sCount[start],
            state.parentType,
        )
        item = self.done.get(key)
        if item is not None and _line_is_complete(state, item[0]):
            state.line, state.tight = item[0], item[1]
            tokens.extend(copy_tokens(item[2]))
            return
        first = len(tokens)
        ParserBlock.tokenize(parse, state, start, end)
        self.previous = _Item(key, state, state.line, state.tight, first, len(tokens))


class _ItemReplayingParserBlock(ParserBlock):
    """The block parser, replaying complete list items kept in ``env``."""

    def __init__(self, ruler: Ruler[Any]) -> None:
        super().__init__()
        self.ruler = ruler

    def tokenize(self, state: StateBlock, startLine: int, endLine: int) -> None:
        items = state.env.get(LIST_ITEMS)
        if items is None:
            super().tokenize(state, startLine, endLine)
        else:
            items.tokenize(self, state, startLine, endLine)


class Inlines:
    """Inline tokens of the paragraphs, cells and headings of earlier parses, by content.

    Every frame parses the whole live tail again, yet only its last paragraph (or cell, or
    heading) changed: the inline tokens of the others are copies of the last parse's, as
    long as the link definitions are the same (they are the only outside input). Parses
    with ``STREAMING`` in env keep only what they used: what the tail holds now.
    """

    def __init__(self) -> None:
        self.kept: dict[str, tuple[list[Token], frozenset[str]]] = {}  # content -> children
        self.references: dict[str, Any] = {}  # the definitions the kept tokens were parsed with

    def parse(self, state: StateCore) -> None:
        log = state.env.get("references")
        if not isinstance(log, ReferenceLog):
            core_inline_rule(state)
            return
        if log != self.references:
            self.kept, self.references = {}, dict(log)
        used: dict[str, tuple[list[Token], frozenset[str]]] = {}
        for token in (t for t in state.tokens if t.type == "inline"):
            kept = self.kept.get(token.content)
            if kept is None:
                token.children = token.children or []
                earlier, log.misses = log.misses, set()
                state.md.inline.parse(token.content, state.md, state.env, token.children)
                kept = copy_tokens(token.children), frozenset(log.misses)
                log.misses |= earlier
            else:
                token.children = copy_tokens(kept[0])
                log.misses |= kept[1]
            used[token.content] = kept
        self.kept = used if state.env.get(STREAMING) else self.kept | used


def _inline_rule(state: StateCore) -> None:
    inlines = state.env.get(INLINES)
    if inlines is None:
        core_inline_rule(state)
    else:
        inlines.parse(state)


@cache
def reusing_parser(allow_images: bool) -> MarkdownIt:
    """:func:`parser`'s twin for a text parsed again as it grows: with ``LIST_ITEMS`` and
    ``INLINES`` in env it replays what earlier parses of the text found complete, and gives
    exactly the tokens :func:`parser` gives."""
    md = _new_parser(allow_images)
    md.block = _ItemReplayingParserBlock(md.block.ruler)
    md.core.ruler.at("inline", _inline_rule)
    return md
