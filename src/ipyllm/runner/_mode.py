"""How an answer runs here: in the background, blocking in a worker thread, or printed."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Literal

Mode = Literal["background", "blocking", "terminal"]


def run_mode(wait: bool | None) -> Mode:
    """Background where somebody can click, blocking where nobody can, printed in a terminal."""
    from IPython.core.getipython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return "terminal"  # terminal IPython or plain Python: no widgets, nobody to click
    if wait is None:
        wait = not has_interactive_frontend()
    if not wait:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return "blocking"  # no loop to run a background task on
    return "blocking" if wait else "background"


def has_interactive_frontend() -> bool:
    """A heuristic: kernels started by Jupyter's server, VS Code or Colab have someone watching.

    jupyter_server sets JPY_SESSION_NAME in the kernels it starts; nbclient,
    nbconvert and papermill do not. Use ``wait=`` (``--wait``) when it guesses wrong.
    """
    env = os.environ
    return bool(
        env.get("JPY_SESSION_NAME")
        or env.get("VSCODE_PID")
        or env.get("COLAB_RELEASE_TAG")
        or "google.colab" in sys.modules
    )
