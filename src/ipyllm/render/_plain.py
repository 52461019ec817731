"""The plain-text counterpart of StreamingMarkdown: escaped text, lines kept as typed."""

from __future__ import annotations

import html


class PlainText:
    """Text shown as typed; complete lines are frozen, the last line is the live tail."""

    def __init__(self) -> None:
        self.text = ""
        self.frozen: list[str] = []
        self._frozen_upto = 0

    def append(self, delta: str) -> None:
        self.text += delta
        end = self.text.rfind("\n") + 1
        if end > self._frozen_upto:
            self.frozen.append(pre_html(self.text[self._frozen_upto : end]))
            self._frozen_upto = end

    @property
    def tail_html(self) -> str:
        tail = self.text[self._frozen_upto :]
        return pre_html(tail) if tail else ""

    @property
    def html(self) -> str:
        """Everything so far: the frozen lines, then the tail."""
        return "".join(self.frozen) + self.tail_html

    def finish(self) -> str:
        return self.html


def pre_html(text: str) -> str:
    """Text as escaped HTML that keeps its line breaks and spaces."""
    return f'<div class="ipyllm-text">{html.escape(text)}</div>'
