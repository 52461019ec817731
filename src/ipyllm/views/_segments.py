"""HTML that only grows, shown as a column of widgets that are each sent once full."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

SEGMENT_BYTES = 4096  # a segment is re-sent while it fills, up to this size
_OWN_MODELS = 2  # a new HTML widget opens a layout and a style model too


class AppendOnlyHTML:
    """Pieces of HTML appended in order; :meth:`flush` sends only the segments that changed."""

    def __init__(self, make: Callable[..., widgets.HTML | widgets.HTMLMath], css_class: str):
        self._make = make
        self._css_class = css_class
        self.box = widgets.VBox(layout=widgets.Layout(margin="0"))
        self.box.add_class(css_class)
        self._values: list[list[str]] = []
        self._sizes: list[int] = []
        self._pending: list[str] = []

    def append(self, piece: str) -> None:
        self._pending.append(piece)

    @property
    def pending(self) -> int:
        """Messages the next :meth:`flush` sends: one per segment it touches, one for the box,
        and for the first segment its layout and style models (later ones share them)."""
        if not self._pending:
            return 0
        size = self._sizes[-1] if self._sizes else SEGMENT_BYTES + 1
        touched, grew = 0, False
        for piece in self._pending:
            if size + len(piece) > SEGMENT_BYTES:
                touched, grew, size = touched + 1, True, 0
            elif touched == 0:
                touched = 1
            size += len(piece)
        first = 0 if self.box.children else _OWN_MODELS
        return touched + (1 + first if grew else 0)

    def flush(self) -> int:
        """Send what was appended; returns how many widget messages that took."""
        if not self._pending:
            return 0
        changed: set[int] = set()
        first_new = len(self._values)
        for piece in self._pending:
            if not self._values or self._sizes[-1] + len(piece) > SEGMENT_BYTES:
                self._values.append([])
                self._sizes.append(0)
            self._values[-1].append(piece)
            self._sizes[-1] += len(piece)
            changed.add(len(self._values) - 1)
        self._pending = []
        children: list[widgets.HTML | widgets.HTMLMath] = list(self.box.children)
        sent = 0
        for index in sorted(changed):
            value = "".join(self._values[index])
            if index < first_new:
                children[index].value = value
            else:  # created with its value and class: the comm_open carries both, one message
                shared = (
                    {"layout": children[0].layout, "style": children[0].style} if children else {}
                )
                children.append(
                    self._make(value=value, _dom_classes=(f"{self._css_class}-segment",), **shared)
                )
                sent += 0 if shared else _OWN_MODELS
            sent += 1
        if len(children) > len(self.box.children):
            self.box.children = tuple(children)
            sent += 1
        return sent

    @property
    def html(self) -> str:
        """Everything appended so far, sent or not."""
        return "".join("".join(values) for values in self._values) + "".join(self._pending)

    def clear(self) -> None:
        for child in self.box.children:
            child.close()
        self.box.children = ()
        self._values, self._sizes, self._pending = [], [], []
