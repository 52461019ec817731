"""HTML that only grows, shown as a column of widgets each sent once it is full."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

SEGMENT_BYTES = 4096  # an append-only segment is re-sent while it fills, up to this size


class AppendOnlyHTML:
    """Pieces of HTML appended in order; :meth:`flush` sends only the segments that changed."""

    def __init__(self, make: Callable[[], widgets.HTML | widgets.HTMLMath], css_class: str):
        self._make = make
        self._css_class = css_class
        self.box = widgets.VBox(layout=widgets.Layout(margin="0"))
        self.box.add_class(css_class)
        self._values: list[list[str]] = []
        self._sizes: list[int] = []
        self._pending: list[str] = []

    def append(self, piece: str) -> None:
        self._pending.append(piece)

    def flush(self) -> None:
        if not self._pending:
            return
        changed: set[int] = set()
        grew = False
        for piece in self._pending:
            if not self._values or self._sizes[-1] + len(piece) > SEGMENT_BYTES:
                self._values.append([])
                self._sizes.append(0)
                grew = True
            self._values[-1].append(piece)
            self._sizes[-1] += len(piece)
            changed.add(len(self._values) - 1)
        self._pending = []
        children: list[widgets.HTML | widgets.HTMLMath] = list(self.box.children)
        while len(children) < len(self._values):
            child = self._make()
            child.add_class(f"{self._css_class}-segment")
            children.append(child)
        for index in sorted(changed):
            children[index].value = "".join(self._values[index])
        if grew:
            self.box.children = tuple(children)

    @property
    def html(self) -> str:
        """Everything appended so far, sent or not."""
        return "".join("".join(values) for values in self._values) + "".join(self._pending)

    def clear(self) -> None:
        for child in self.box.children:
            child.close()
        self.box.children = ()
        self._values, self._sizes, self._pending = [], [], []
