"""How an answer runs here: in the background, blocking in a worker thread, or printed."""

from __future__ import annotations

import asyncio
import sys
from typing import Literal

from ..views import someone_watching

Mode = Literal["background", "blocking", "terminal"]


def run_mode(wait: bool | None) -> Mode:
    """Background where somebody can click, blocking where nobody can, printed in a terminal."""
    from IPython.core.getipython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return "terminal"  # terminal IPython or plain Python: no widgets, nobody to click
    if sys.platform == "emscripten":
        return "background"  # Pyodide (JupyterLite): no thread to block in, and a page to click
    if wait is None:
        wait = not has_interactive_frontend()
    if not wait:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return "blocking"  # no loop to run a background task on
    return "blocking" if wait else "background"


def has_interactive_frontend() -> bool:
    """Whether somebody can click: see :func:`ipyllm.views.someone_watching`. Use
    ``wait=`` (``--wait``) when it guesses wrong."""
    return someone_watching()
