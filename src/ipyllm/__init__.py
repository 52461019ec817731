"""ipyllm: stream LLM answers live into Jupyter, with a Stop button that really stops.

In a notebook::

    %load_ext ipyllm
    %%chat
    Explain server-sent events in one paragraph.

From Python (anywhere asyncio runs)::

    transcript = await ipyllm.achat("Explain SSE")       # the offline demo model by default
    async for event in ipyllm.stream("Hi", provider="openai"):
        ...
    view = ipyllm.ChatView(); display(view); await view.stream(some_async_iterable)

Data flows one way, one layer per package: bytes -> events (``sse``, ``ndjson``)
-> deltas (``dialects``) -> transcript (``client``, its only writer) -> HTML
(``render``) -> views (``views``, sinks); ``runner`` drives any source into any
sink and owns Stop; ``chat`` is the API and ``magic`` a thin shell over it.
Every layer loads on first use: ``import ipyllm.sse`` loads the decoder alone, and
``achat`` pays no widget import.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._version import __version__
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    HTTPStatusError,
    InterpolationError,
    IpyllmError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    ReplayMissError,
    StalledError,
    StoreError,
    StreamError,
    StructuredOutputError,
    TruncatedError,
)

if _typing.TYPE_CHECKING:
    from typing import Any

    from ._chat import ChatResult, ChatView, chat, stop_all
    from ._many import Comparison, MapResult, compare
    from ._many import map_rows as map
    from .client import Stream, achat, list_models, stream
    from .options import Options
    from .render import StreamingMarkdown, render_markdown
    from .transcript import ToolCall, Transcript, Usage

# Loaded on first use (PEP 562): name -> the module that defines it.
_LAZY = {
    "Stream": ".client",
    "achat": ".client",
    "list_models": ".client",
    "stream": ".client",
    "Options": ".options",
    "ToolCall": ".transcript",
    "Transcript": ".transcript",
    "Usage": ".transcript",
    "ChatResult": "._chat",
    "ChatView": "._chat",
    "chat": "._chat",
    "stop_all": "._chat",
    "StreamingMarkdown": ".render",
    "Comparison": "._many",
    "MapResult": "._many",
    "compare": "._many",
    "map": "._many:map_rows",
    "render_markdown": ".render",
}

last: ChatResult | None = None
"""The most recent answer started by %%chat."""


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'ipyllm' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(_importlib.import_module(module, __name__), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext ipyllm``: register the %%chat and %chat magics."""
    from .magic import load_ipython_extension as load

    load(shell)


__all__ = [
    "AuthenticationError",
    "ChatResult",
    "ChatView",
    "Comparison",
    "ConfigurationError",
    "ConnectError",
    "HTTPStatusError",
    "InterpolationError",
    "IpyllmError",
    "MapResult",
    "Options",
    "ProtocolError",
    "ProviderError",
    "RateLimitError",
    "ReplayMissError",
    "StalledError",
    "StoreError",
    "Stream",
    "StreamError",
    "StreamingMarkdown",
    "StructuredOutputError",
    "ToolCall",
    "Transcript",
    "TruncatedError",
    "Usage",
    "__version__",
    "achat",
    "chat",
    "compare",
    "last",
    "list_models",
    "load_ipython_extension",
    "map",
    "render_markdown",
    "stop_all",
    "stream",
]
