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
"""

from __future__ import annotations

from ._chat import ChatResult, chat, stop_all
from ._client import Stream, achat, list_models, stream
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    HTTPStatusError,
    IpyllmError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    StalledError,
    StreamError,
    TruncatedError,
)
from ._markdown import StreamingMarkdown, render_markdown
from ._transcript import ToolCall, Transcript, Usage
from ._version import __version__
from ._view import ChatView

last: ChatResult | None = None
"""The most recent answer started by %%chat."""


def load_ipython_extension(shell: object) -> None:
    """``%load_ext ipyllm``: register the %%chat and %chat magics."""
    from ._magic import load_ipython_extension as load

    load(shell)


__all__ = [
    "AuthenticationError",
    "ChatResult",
    "ChatView",
    "ConfigurationError",
    "ConnectError",
    "HTTPStatusError",
    "IpyllmError",
    "ProtocolError",
    "ProviderError",
    "RateLimitError",
    "StalledError",
    "Stream",
    "StreamError",
    "StreamingMarkdown",
    "ToolCall",
    "Transcript",
    "TruncatedError",
    "Usage",
    "__version__",
    "achat",
    "chat",
    "last",
    "list_models",
    "load_ipython_extension",
    "render_markdown",
    "stop_all",
    "stream",
]
