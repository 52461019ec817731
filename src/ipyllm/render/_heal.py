"""Live-tail healing: half-typed Markdown shown as it will look once its markers close.

Applied only to the live tail while streaming; never to frozen blocks, never at finish().
Everything still goes through markdown-it (html=False) and nh3, so healing cannot make
output unsafe: it only changes how half-typed Markdown looks for a moment.

Two steps, both in :func:`heal_blocks` (between the block and inline halves of md.parse,
:func:`parse_blocks` and :func:`parse_inline`): trailing lines whose meaning is not known
yet (a table header before its delimiter row, a setext underline, a fence opener) are held
back, and :func:`heal_inline` closes what the last paragraph left open.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_core import block as core_block_rule
from markdown_it.token import Token
from markdown_it.utils import EnvType

from ._math import find_unescaped

__all__ = [
    "heal_blocks",
    "heal_inline",
    "last_leaf",
    "parse_blocks",
    "parse_inline",
]

# --------------------------------------------------------------------------- held-back lines

_TABLE_ROW = re.compile(r" {0,3}\|")
_TABLE_DELIMITER_SO_FAR = re.compile(r" {0,3}\|[\s|:-]*$")


def _line_count(source: str) -> int:
    return source.count("\n") + (0 if source.endswith("\n") or not source else 1)


def last_leaf(tokens: Sequence[Token]) -> int | None:
    """Index of the last token that is not an opening or closing one."""
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
    leaf_index = last_leaf(tokens)
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


# --------------------------------------------------------------------------- inline closing

_TRAILING_MARKER_RUN = re.compile(r"(?<!\\)[*_~`]+$")
_INLINE_SYNTAX = re.compile(r"[\\`$\[\]<*_~]")
_AUTOLINK = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\s<>]*>")


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
        end = find_unescaped(text, "$$", start + 2, len(text))
        return end + 2 if end >= 0 else -1
    after = text[start + 1 : start + 2]
    if not after or after.isspace() or (start and text[start - 1].isdigit()):
        return start + 1
    end = find_unescaped(text, "$", start + 1, len(text))
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
                end = find_unescaped(text, closer, index + 2, len(text))
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


# --------------------------------------------------------------------------- parsing


def _run_core_rules(rules: Sequence[Callable[[StateCore], None]], state: StateCore) -> StateCore:
    for rule in rules:
        rule(state)
    return state


def _core_rules(md: MarkdownIt) -> tuple[list[Callable[[StateCore], None]], int]:
    """md's core rules and the index of the first one after block parsing."""
    rules = md.core.ruler.getRules("")
    return rules, rules.index(core_block_rule) + 1


def parse_blocks(md: MarkdownIt, source: str, env: EnvType) -> StateCore:
    """The first half of md.parse: ``source`` parsed into block tokens, inline not yet."""
    rules, split = _core_rules(md)
    return _run_core_rules(rules[:split], StateCore(source, md, env))


def parse_inline(state: StateCore) -> list[Token]:
    """The second half of md.parse, for block tokens from :func:`parse_blocks`."""
    rules, split = _core_rules(state.md)
    return _run_core_rules(rules[split:], state).tokens


def heal_blocks(state: StateCore) -> list[Token]:
    """:func:`parse_inline` with the healing rules applied first."""
    trimmed = _without_pending_lines(state.src, state.tokens)
    if trimmed is not None:
        state = parse_blocks(state.md, trimmed, state.env)
    leaf_index = last_leaf(state.tokens)
    if leaf_index is not None:
        leaf = state.tokens[leaf_index]
        # Only a paragraph/heading/cell that runs to the end is still being typed.
        if leaf.type == "inline" and leaf.map and leaf.map[1] == _line_count(state.src):
            leaf.content = heal_inline(leaf.content)
    return parse_inline(state)
