"""Incremental Markdown rendering: complete top-level blocks are frozen, the live tail healed.

A frame costs what the live tail costs, whatever the length of the answer; ``finish()``
equals :func:`render_markdown` of the whole text.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType

from ._heal import parse_healed
from ._parse import STREAMING, normalize, parser, render_markdown, render_tokens

__all__ = ["StreamingMarkdown"]


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
    """Character offsets where the top-level blocks of ``source`` start."""
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
        self._md = parser(allow_images)
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
            self._live += normalize(self._carried_cr)
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
        self._live += normalize(raw.removesuffix("\r"))

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
        html = render_tokens(self._md, self._md.parse(source, env), env, self._allow_images)
        new_labels = references.keys() - self._definitions.keys()
        if new_labels:
            self._definitions.update({label: references[label] for label in new_labels})
            if new_labels & self._missed_labels:
                self.rerendered = True
        return html, references.misses

    def _render_live_tail(self) -> str:
        if not self._live:
            return ""
        env: EnvType = {"references": _ReferenceLog(self._definitions), STREAMING: True}
        tokens = parse_healed(self._md, self._live, env)
        return render_tokens(self._md, tokens, env, self._allow_images)
