"""Values as a prompt shows them: tables for DataFrames and Series, str() for the rest.

A DataFrame of ten thousand rows must not become a prompt of ten thousand rows: a table
keeps its head and tail within a row budget (``table_rows``) and a character budget
(``table_chars``), and says what it left out. pandas is duck-typed, never imported.
"""

from __future__ import annotations

from typing import Any

_CELL_CHARS = 200  # a longer cell is cut, so one long string cannot eat the whole budget
_MIN_ROWS = 2


def is_frame(value: Any) -> bool:
    """A pandas DataFrame (or anything shaped like one)."""
    return (
        hasattr(value, "iloc")
        and hasattr(value, "columns")
        and hasattr(value, "itertuples")
        and len(getattr(value, "shape", ())) == 2
    )


def is_series(value: Any) -> bool:
    return (
        hasattr(value, "iloc")
        and hasattr(value, "index")
        and callable(getattr(value, "to_frame", None))
        and len(getattr(value, "shape", ())) == 1
    )


def as_prompt_text(value: Any, *, rows: int, chars: int) -> str:
    """How ``value`` reads in a prompt: a bounded Markdown table, or ``str(value)``."""
    if is_series(value):
        name = value.name if value.name is not None else "value"
        value = value.to_frame(name=name)
    if is_frame(value):
        return markdown_table(value, rows=rows, chars=chars)
    return str(value)


def markdown_table(frame: Any, *, rows: int, chars: int) -> str:
    """The head and tail of ``frame`` as a Markdown table of at most ``rows`` rows and about
    ``chars`` characters, with a note of what was left out."""
    total_rows, total_columns = frame.shape
    columns = total_columns
    shown = min(total_rows, max(rows, _MIN_ROWS))
    while True:
        table = _table(frame, shown, columns)
        if len(table) <= chars or (shown <= _MIN_ROWS and columns <= 1):
            break
        if shown > _MIN_ROWS:
            shown = max(_MIN_ROWS, min(shown // 2, shown - 1))
        else:
            columns -= 1
    left_out = []
    if shown < total_rows:
        head = (shown + 1) // 2
        left_out.append(
            f"rows {head + 1:,} to {total_rows - (shown - head):,} "
            f"({total_rows - shown:,} rows) are left out"
        )
    if columns < total_columns:
        left_out.append(f"the last {total_columns - columns:,} columns are left out")
    size = f"{_count(total_rows, 'row')} × {_count(total_columns, 'column')}"
    note = f"(A table of {size}" + (f"; {' and '.join(left_out)})" if left_out else ")")
    return f"{table}\n\n{note}"


def _table(frame: Any, shown: int, columns: int) -> str:
    total = frame.shape[0]
    head = (shown + 1) // 2
    part = frame.iloc[:, :columns]
    names = [_cell(part.index.name or "")] + [_cell(column) for column in part.columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    if shown >= total:
        lines += _rows(part)
    else:
        lines += _rows(part.iloc[:head])
        lines.append("| " + " | ".join(["…"] * len(names)) + " |")
        lines += _rows(part.iloc[total - (shown - head) :])
    return "\n".join(lines)


def _rows(part: Any) -> list[str]:
    return ["| " + " | ".join(map(_cell, row)) + " |" for row in part.itertuples(name=None)]


def _cell(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    if len(text) > _CELL_CHARS:
        text = text[: _CELL_CHARS - 1] + "…"
    # One line per row, and a | inside a cell does not end it.
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}" if number == 1 else f"{number:,} {word}s"
