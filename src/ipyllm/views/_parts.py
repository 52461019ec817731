"""The widgets an answer view is made of, each marked with the CSS class pages find it by,
and how a batch view (columns, progress) is shown."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..render import STYLESHEET
from ._outputs import NotebookOutputs, hide_fallback_css, widget_bundle
from ._segments import AppendOnlyHTML


def math_html(**traits: Any) -> widgets.HTMLMath:
    if "layout" not in traits:  # not setdefault: an unused Layout would still open a comm
        traits["layout"] = widgets.Layout(margin="0")
    return widgets.HTMLMath(**traits)


def plain_html(**traits: Any) -> widgets.HTML:
    if "layout" not in traits:
        traits["layout"] = widgets.Layout(margin="0")
    return widgets.HTML(**traits)


def stop_button(description: str, tooltip: str, css_class: str, **layout: str) -> widgets.Button:
    """A Stop button, disabled until there is something to stop."""
    return widgets.Button(
        description=description,
        icon="stop",
        button_style="danger",
        tooltip=tooltip,
        disabled=True,
        layout=widgets.Layout(width="auto", **layout),
        _dom_classes=(css_class,),
    )


class ViewParts:
    """Status line and Stop, notes, reasoning, body (sealed segments and the live tail),
    tool calls and errors, raw wire events; ``children`` in the order they are shown."""

    def __init__(
        self, answer_id: str, *, max_height: str | None, events: bool, notes: list[str]
    ) -> None:
        self.status = plain_html(_dom_classes=("ipyllm-status-line",))
        self.status.layout.flex = "1 1 auto"
        self.stop_button = stop_button(
            "Stop", "Stop this answer and close its connection", "ipyllm-stop", margin="0 0 0 8px"
        )
        self.reasoning_toggle = widgets.Button(
            description="Show reasoning",
            icon="lightbulb-o",
            layout=widgets.Layout(width="auto", display="none"),
            _dom_classes=("ipyllm-reasoning-toggle",),
        )
        self.reasoning = AppendOnlyHTML(plain_html, "ipyllm-reasoning")
        self.reasoning.box.layout.display = "none"
        self.body = AppendOnlyHTML(math_html, "ipyllm-blocks")
        self.tail = math_html(_dom_classes=("ipyllm-tail",))
        # flex 0 0 auto: under a max height the body must overflow its scroller, not shrink.
        body = widgets.VBox(
            [self.body.box, self.tail], layout=widgets.Layout(margin="0", flex="0 0 auto")
        )
        # column-reverse keeps the newest text in view unless the reader scrolls up.
        # ipyllm-md: the renderer's stylesheet is scoped to it.
        scroller = widgets.Box(
            [body],
            layout=widgets.Layout(
                max_height=max_height,
                overflow="auto" if max_height else None,
                flex_flow="column-reverse" if max_height else "column",
            ),
            _dom_classes=("ipyllm-body", "ipyllm-md"),
        )
        self.extras = plain_html(_dom_classes=("ipyllm-extras",))
        self.raw = AppendOnlyHTML(plain_html, "ipyllm-raw")
        # The scroller, not the box, is limited: it keeps the newest events in view.
        raw_scroll = widgets.Box(
            [self.raw.box],
            layout=widgets.Layout(display="flex" if events else "none"),
            _dom_classes=("ipyllm-raw-scroll",),
        )
        header = widgets.HBox(
            [self.status, self.stop_button],
            layout=widgets.Layout(align_items="center", margin="0"),
        )
        self.notes = plain_html(value=notes_html(notes), _dom_classes=("ipyllm-notes",))
        style = f"<style>{STYLESHEET}{hide_fallback_css(answer_id)}</style>"
        self.children = [
            plain_html(value=style),
            header,
            self.notes,
            self.reasoning_toggle,
            self.reasoning.box,
            scroller,
            self.extras,
            raw_scroll,
        ]


def notes_html(notes: list[str]) -> str:
    return "".join(f'<div class="ipyllm-note">{html.escape(note)}</div>' for note in notes)


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """A widget, its children, and the layout and style models each one owns."""
    found = []
    for child in getattr(widget, "children", ()):
        found += descendants(child)
    for owned in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(owned, widgets.Widget):
            found.append(owned)
    found.append(widget)
    return found


class ShownWithFallback:
    """The showing of a view, mixed into its widget class (which has an ``answer_id`` and a
    ``static_copy()``): live, with a static fallback beside it (see NotebookOutputs), again
    on request, or replaced by the static copy in headless runs."""

    answer_id: str
    model_id: str  # the widget's
    _outputs: NotebookOutputs | None = None

    def static_copy(self) -> tuple[dict[str, str], dict[str, Any]]:
        raise NotImplementedError  # the view's own

    def display(self, *, fallback: bool = True) -> None:
        """Show the view in the current cell, with its static fallback unless told not to."""
        self._outputs = NotebookOutputs(self.answer_id)
        self._outputs.show(widget_bundle(self.model_id), self.static_copy() if fallback else None)

    def _ipython_display_(self) -> None:
        self.display()

    def display_again(self) -> None:
        """Show the live view, and its fallback, once more in the current cell (see
        ``%chat running`` and :meth:`NotebookOutputs.show_again`)."""
        outputs = self._outputs or NotebookOutputs(self.answer_id)
        outputs.show_again(widget_bundle(self.model_id), self.static_copy())

    def replace_with_static(self) -> None:
        """Headless runs: the static copy takes the widget's place and the widgets close."""
        if self._outputs is None:
            return
        self._outputs.replace_live(*self.static_copy())
        self.close_all_children()

    def close_all_children(self) -> None:
        """Close this view's widgets (their comms)."""
        for widget in descendants(self):
            widget.close()
