"""ipyllm: stream LLM answers live into Jupyter, with a Stop button that really stops.

The streaming core works anywhere asyncio does::

    import ipyllm
    transcript = await ipyllm.achat("Explain SSE in one paragraph")   # demo model offline
    async for event in ipyllm.stream("Hi", provider="openai"):
        ...
"""

from ._client import Stream, achat, stream
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
from ._transcript import ToolCall, Transcript, Usage

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
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
    "ToolCall",
    "Transcript",
    "TruncatedError",
    "Usage",
    "achat",
    "stream",
]
