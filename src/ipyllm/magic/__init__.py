"""Layer 9, the ``%%chat`` and ``%chat`` magics: a thin shell over the public Python API.

Every option is declared once, in :class:`ipyllm.options.Options`: the magic's
flags and the ``%config Chat.<name>`` traits are generated from it, and
:func:`ipyllm.options.resolve_options` decides precedence (the cell's option, then
``%config``, then the environment, then the default).
"""

from __future__ import annotations

from typing import Any

from ._flags import Chat
from ._magics import ChatMagics


def load_ipython_extension(shell: Any) -> None:
    config = Chat(parent=shell)
    shell.configurables.append(config)
    shell.register_magics(ChatMagics(shell, config))


__all__ = ["Chat", "ChatMagics", "load_ipython_extension"]
