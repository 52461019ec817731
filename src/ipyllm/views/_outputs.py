"""Where an answer lives in the notebook: a live widget output and a static fallback beside it.

A widget output needs its model: a page reopened after the kernel restarted shows
"model not found" for it, and JupyterLab saves no widget state by default. So a live
view is shown as two outputs of the same cell:

- the live output, the widget, which stays alive after the answer ends, so a page
  that reloads (mid-stream or later) shows it complete, with a working Stop button;
- the fallback output, a static sanitized copy (``text/html``, ``text/markdown``,
  ``text/plain``) kept current every few seconds and at the end.

Whichever can render is seen, never both: the widget's stylesheet hides the fallback
of its own answer, and the fallback's stylesheet hides the widget output next to it
when that output holds no rendered view (a message or an error instead of a widget).
Viewers without widgets (nbconvert, GitHub, VS Code without a kernel) show the
fallback. Headless runs need no live output: there the widget is replaced by the
static copy when the answer ends.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# A JupyterLab/Notebook 7 output area: .jp-OutputArea-child > .jp-OutputArea-output.
_HIDE_FALLBACK = (
    '.jp-OutputArea-child:has([data-ipyllm-fallback="{id}"]),'
    ' [data-ipyllm-fallback="{id}"] {{ display: none !important; }}'
)
# :has() may not nest in :has() (browsers drop the rule), but it may in :not().
_HIDE_DEAD_LIVE = (
    ".jp-OutputArea-child:not(:has(> .jp-OutputArea-output > *))"
    ':has(+ .jp-OutputArea-child [data-ipyllm-fallback="{id}"]) {{ display: none; }}'
)


def hide_fallback_css(answer_id: str) -> str:
    """The rule a live view carries: its own answer's fallback is not shown beside it."""
    return _HIDE_FALLBACK.format(id=answer_id)


def hide_dead_live_css(answer_id: str) -> str:
    """The rule a fallback carries: the widget output just before it is not shown while it
    holds no rendered view ("Loading widget...", "model not found")."""
    return _HIDE_DEAD_LIVE.format(id=answer_id)


def fallback_bundle(
    answer_id: str, data: dict[str, str], metadata: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """A static bundle marked as the fallback of ``answer_id``'s live view."""
    marked = dict(data)
    marked["text/html"] = (
        f"<style>{hide_dead_live_css(answer_id)}</style>"
        f'<div data-ipyllm-fallback="{answer_id}">{data["text/html"]}</div>'
    )
    return marked, {**metadata, "ipyllm_fallback": answer_id}


def someone_watching() -> bool:
    """A heuristic: is a page showing this kernel's outputs as they change?

    jupyter_server sets JPY_SESSION_NAME in the kernels it starts, and Voilà sets
    VOILA_KERNEL_ID; VS Code and Colab are recognised too. nbclient, nbconvert and
    papermill set none of these: nobody watches, and outputs must be final when saved.
    """
    env = os.environ
    return bool(
        env.get("JPY_SESSION_NAME")
        or env.get("VOILA_KERNEL_ID")
        or env.get("VSCODE_PID")
        or env.get("COLAB_RELEASE_TAG")
        or "google.colab" in sys.modules
    )


def widget_bundle(model_id: str) -> dict[str, Any]:
    """The output bundle of a live widget, built by hand: ipywidgets 7 has no
    ``_repr_mimebundle_``, and both speak protocol 2. No text: viewers without widgets
    show the fallback output instead."""
    return {
        "text/plain": "",
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": model_id,
        },
    }


class NotebookOutputs:
    """The display ids of one answer's outputs, and the only code that writes to them."""

    def __init__(self, answer_id: str) -> None:
        self.answer_id = answer_id
        self.live_id = f"ipyllm-live-{answer_id}"
        self.fallback_id: str | None = None

    def show(
        self,
        widget_bundle: dict[str, Any],
        fallback: tuple[dict[str, str], dict[str, Any]] | None,
    ) -> None:
        """Display the live view, then (if given) its fallback, in the current cell."""
        from IPython.display import display

        display(widget_bundle, raw=True, display_id=self.live_id)
        if fallback is not None:
            self.fallback_id = f"ipyllm-static-{self.answer_id}"
            data, metadata = fallback_bundle(self.answer_id, *fallback)
            display(data, raw=True, metadata=metadata, display_id=self.fallback_id)

    def show_again(
        self, widget_bundle: dict[str, Any], fallback: tuple[dict[str, str], dict[str, Any]]
    ) -> None:
        """Display the live view and its fallback once more, in the current cell, under the
        same display ids (``%chat running``, after a page reloaded).

        The widget is the same model, so its Stop button works. A page knows only the
        display ids of the cells it ran: from now on the fallback's updates reach this
        cell in the reloaded page too, so a save there keeps the final copy.
        """
        self.show(widget_bundle, fallback if self.fallback_id is not None else None)

    def update_fallback(self, data: dict[str, str], metadata: dict[str, Any]) -> None:
        if self.fallback_id is None:
            return
        from IPython.display import update_display

        data, metadata = fallback_bundle(self.answer_id, data, metadata)
        update_display(data, raw=True, metadata=metadata, display_id=self.fallback_id)

    def replace_live(self, data: dict[str, str], metadata: dict[str, Any]) -> None:
        """Put a static bundle where the live view was (headless runs, or on request)."""
        from IPython.display import update_display

        update_display(data, raw=True, metadata=metadata, display_id=self.live_id)
