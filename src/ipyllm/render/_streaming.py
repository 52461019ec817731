"""Incremental Markdown rendering: complete top-level blocks are frozen, the live tail healed.

A frame costs what the live tail costs, whatever the length of the answer; ``finish()``
equals :func:`render_markdown` of the whole text. The live tail is usually one long block (a
list, a paragraph), so each frame reuses what the last one parsed wherever markdown-it's
tokens show it cannot change: complete list items (``ListItems``), the inline tokens of
unchanged paragraphs (``Inlines``), the block tokens when only the last paragraph line
grew (``StreamingMarkdown._typed_on``), and one block parse serves both the frame and the
search for complete blocks. Every frame's HTML is exactly what parsing it all would give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from markdown_it.common.utils import MD_TRIM_CHARS
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType

from ._heal import heal_blocks, last_leaf, parse_blocks, parse_inline
from ._parse import (
    INLINES,
    LIST_ITEMS,
    STREAMING,
    Inlines,
    ListItems,
    ReferenceLog,
    copy_tokens,
    normalize,
    render_tokens,
    reusing_parser,
)

__all__ = ["StreamingMarkdown"]

# The source of the last rendered frame, its block tokens and its last paragraph's inline.
_Rendered = tuple[str, list[Token], Token]
# What may open a line before its text: block quote markers and list item markers.
_CONTAINER_MARKERS = re.compile(r"[ \t]*(?:(?:>|[-*+][ \t]|[0-9]{1,9}[.)][ \t])[ \t]*)*")
# A character no line that starts a block, ends one or underlines one can hold from its start
# to it (heading, fence, math, rule, setext underline, table delimiter row, list marker).
_PLAIN = re.compile(r"[^\s#`~$\\*_+=|:>.)\[\]0-9-]")


def _typed_paragraph(source: str, tokens: list[Token]) -> int | None:
    """The index of the inline token of the paragraph ``source`` ends in, if typing on can only
    make it longer: after the container markers (quote, list item) of the last line comes
    a character no line that starts, ends or underlines a block can hold from its start to
    it, so nothing typed after it can change what the line is, nor what the lines before
    it are (it ends no block, underlines nothing, is no table delimiter row)."""
    line = source[source.rfind("\n") + 1 :]
    markers = _CONTAINER_MARKERS.match(line)
    if markers is None or not _PLAIN.search(line, markers.end()) or "]:" in source:
        return None  # (typing on can complete a link definition, which has no token)
    index = last_leaf(tokens)
    if not index or tokens[index].type != "inline" or tokens[index - 1].type != "paragraph_open":
        return None  # (an inline token never comes first)
    lines = tokens[index].map
    return index if lines and lines[1] == source.count("\n") + 1 else None  # ends the source


def _top_level_blocks(tokens: list[Token]) -> list[tuple[int, int]]:
    """(first line, token index) of each top-level block in block tokens."""
    return [
        (t.map[0], i) for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map
    ]


def _line_offsets(source: str, lines: Iterable[int]) -> list[int]:
    """Character offsets where the (ascending) ``lines`` of ``source`` start."""
    offsets, line, position = [], 0, 0
    for start in lines:
        while line < start:
            position = source.index("\n", position) + 1
            line += 1
        offsets.append(position)
    return offsets


def _cut(state: StateCore, block: int, line: int, source: str) -> StateCore:
    """The tokens of ``state`` from top-level token ``block`` on, as parsed from ``source``,
    its text from ``line`` on: top-level blocks parse alike wherever they start."""
    cut = StateCore(source, state.md, state.env)
    cut.tokens = state.tokens[block:]
    for token in cut.tokens:
        if token.map is not None:
            token.map = [token.map[0] - line, token.map[1] - line]
    return cut


class StreamingMarkdown:
    """Incremental Markdown renderer for a stream of text deltas.

    ``frozen`` holds the sanitized HTML of complete top-level blocks (it only grows and each
    entry is rendered once); ``tail_html`` is the rest, re-rendered lazily, so a frame costs
    what the tail costs, whatever the length of the answer. ``finish()`` always equals
    ``render_markdown`` of the whole text. In one rare case the frozen blocks are not its
    prefix: a ``[label]: url`` definition arriving after a frozen block that used
    ``[label]`` (LLMs almost never write them; task items ``[x]`` and citations ``[1]``
    without a definition are not affected). Then ``rerendered`` is true and ``finish()``
    renders those blocks again.
    """

    def __init__(self, *, allow_images: bool = False) -> None:
        self._allow_images = allow_images
        self._md = reusing_parser(allow_images)
        self._received: list[str] = []
        self._unmerged: list[str] = []
        self._carried_cr = ""  # a final "\r" may be the first half of "\r\n"
        self._live = ""  # normalized source not frozen yet
        self._scanned = 0  # length of _live's complete lines already checked for blocks
        self._items = ListItems()  # complete list items at the start of _live
        self._inlines = Inlines()  # inline tokens of the last parse of _live
        self._blocks: StateCore | None = None  # block tokens of _live, for its next render
        self._rendered: _Rendered | None = None  # see _typed_on
        self._frozen: list[str] = []
        self._frozen_html = ""
        self._missed_labels: set[str] = set()  # used by frozen blocks, undefined then
        self._missing: dict[int, tuple[str, set[str]]] = {}  # frozen index -> source, misses
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
            self._live += normalize(self._carried_cr)
            self._carried_cr = ""
            self._finished = True
            self._blocks = self._rendered = None
            # Rendering the last block also registers the link definitions it holds.
            self._tail_html = self._render_block(self._live, None)[0] if self._live else ""
            frozen_html = self._frozen_html
            if self.rerendered:  # a late definition changed frozen blocks: render those again
                frozen_html = "".join(self._frozen_with_late_definitions())
            self._final_html = frozen_html + self._tail_html
        return self._final_html

    def _frozen_with_late_definitions(self) -> list[str]:
        # A block's HTML depends on the definitions only through the labels it looked up:
        # one that missed no label defined by now renders as it did when it was frozen.
        frozen = list(self._frozen)
        for index, (source, misses) in self._missing.items():
            if not misses.isdisjoint(self._definitions):
                env: EnvType = {"references": dict(self._definitions)}
                tokens = self._md.parse(source, env)
                frozen[index] = render_tokens(self._md, tokens, env, self._allow_images)
        return frozen

    def _merge(self) -> None:
        if not self._unmerged:
            return
        raw = self._carried_cr + "".join(self._unmerged)
        self._unmerged.clear()
        self._carried_cr = "\r" if raw.endswith("\r") else ""
        self._live += normalize(raw.removesuffix("\r"))
        self._blocks = None

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
        if "]:" in self._live:
            # A link definition has no token, and the half-typed line can make one of lines
            # that started a block: parse the complete lines alone.
            self._freeze(*self._parse_complete_lines(complete), None)
            return
        # The blocks of the whole live text, which the frame renders next anyway. Where
        # blocks start before the last complete line does not depend on the half-typed
        # line (markdown-it looks at most one line ahead), and it removes no start; but it
        # may start a block itself, or make the last complete line start one (a table
        # header, once the half-typed line is its delimiter row): then ask the complete
        # lines alone.
        live = self._live_blocks()
        blocks = _top_level_blocks(live.tokens)
        if complete < len(self._live):
            lines = self._live.count("\n", 0, complete)
            blocks = [block for block in blocks if block[0] < lines]
            if blocks and blocks[-1][0] == lines - 1:
                self._freeze(*self._parse_complete_lines(complete), live)
                return
        self._freeze(live.tokens, blocks, live)

    def _parse_complete_lines(self, complete: int) -> tuple[list[Token], list[tuple[int, int]]]:
        tokens: list[Token] = []
        source = self._live[:complete]
        self._md.block.parse(source, self._md, {LIST_ITEMS: self._items}, tokens)
        return tokens, _top_level_blocks(tokens)

    def _freeze(
        self, tokens: list[Token], blocks: list[tuple[int, int]], live: StateCore | None
    ) -> None:
        """Commit all blocks but the last, keeping the tokens of ``live`` from there on."""
        if len(blocks) < 2:
            return
        offsets = _line_offsets(self._live, (line for line, _ in blocks))
        offsets[0] = 0  # blank lines at the start go with the first block
        for (begin, end), (first, last) in zip(
            pairwise(offsets), pairwise(index for _, index in blocks), strict=True
        ):
            source = self._live[begin:end]
            # A block defining a link must be parsed alone to register the definition.
            self._commit(source, None if "]:" in source else tokens[first:last])
        line, cut = blocks[-1][0], offsets[-1]
        self._live = self._live[cut:]
        self._scanned -= cut
        self._items.clear()
        self._blocks = self._rendered = None
        if live is not None:
            block = next(
                (index for start, index in _top_level_blocks(live.tokens) if start == line), None
            )
            if block is not None:
                self._blocks = _cut(live, block, line, self._live)

    def _commit(self, source: str, tokens: list[Token] | None) -> None:
        html, misses = self._render_block(source, tokens)
        self._missed_labels |= misses
        if misses:
            self._missing[len(self._frozen)] = (source, misses)
        self._frozen.append(html)
        self._frozen_html += html

    def _render_block(self, source: str, tokens: list[Token] | None) -> tuple[str, set[str]]:
        """HTML of a block, from its source or its block tokens, and the labels it missed."""
        references = ReferenceLog(self._definitions)
        env: EnvType = {"references": references, INLINES: self._inlines}
        if tokens is None:
            tokens = self._md.parse(source, env)
        else:
            state = StateCore(source, self._md, env)
            state.tokens = tokens
            tokens = parse_inline(state)
        html = render_tokens(self._md, tokens, env, self._allow_images)
        new_labels = references.keys() - self._definitions.keys()
        if new_labels:
            self._definitions.update({label: references[label] for label in new_labels})
            if new_labels & self._missed_labels:
                self.rerendered = True
        return html, references.misses

    def _live_blocks(self) -> StateCore:
        if self._blocks is None:
            env: EnvType = {
                "references": ReferenceLog(self._definitions),
                STREAMING: True,
                LIST_ITEMS: self._items,
                INLINES: self._inlines,
            }
            tokens = self._typed_on(self._rendered)
            if tokens is None:
                self._blocks = parse_blocks(self._md, self._live, env)
            else:
                self._blocks = StateCore(self._live, self._md, env)
                self._blocks.tokens = tokens
        return self._blocks

    def _typed_on(self, rendered: _Rendered | None) -> list[Token] | None:
        """Block tokens of _live made from those last rendered, if since then only their
        last paragraph line grew (see _typed_paragraph)."""
        if rendered is None:
            return None
        source, tokens, leaf = rendered
        grown = self._live[len(source) :]
        if not self._live.startswith(source) or "\n" in grown or "]:" in self._live:
            return None
        # markdown-it trims a paragraph's content: it grew by what follows the trimmed end
        # of its last line, trimmed.
        line = source[source.rfind("\n") + 1 :]
        leaf.content += (line[len(line.rstrip(MD_TRIM_CHARS)) :] + grown).rstrip(MD_TRIM_CHARS)
        self._rendered = (self._live, tokens, leaf)
        return copy_tokens(tokens)

    def _render_live_tail(self) -> str:
        if not self._live:
            return ""
        state = self._live_blocks()
        self._blocks = None  # healing and inline parsing change its tokens
        if self._rendered is None or self._rendered[0] is not self._live:
            index = _typed_paragraph(self._live, state.tokens)
            self._rendered = None
            if index is not None:  # keep a copy of the tokens for the next frames
                tokens = copy_tokens(state.tokens)
                self._rendered = (self._live, tokens, tokens[index])
        return render_tokens(self._md, heal_blocks(state), state.env, self._allow_images)
