"""The exceptions ipyllm raises. Every message is meant to be read by a person."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._transcript import Transcript


class IpyllmError(Exception):
    """Base class of every error ipyllm raises on purpose."""


class ConfigurationError(IpyllmError, ValueError):
    """Something is wrong before anything was sent: unknown provider, missing API key..."""


class StreamError(IpyllmError):
    """A request or stream failed. ``transcript`` keeps everything received before it."""

    def __init__(self, message: str, *, transcript: Transcript | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transcript = transcript


class HTTPStatusError(StreamError):
    """The server answered with an error status before the stream started."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        server_message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message, transcript=transcript)
        self.status_code = status_code
        self.server_message = server_message
        self.error_type = error_type
        self.error_code = error_code
        self.retry_after = retry_after


class AuthenticationError(HTTPStatusError):
    """401 or 403: the API key is missing, wrong or not allowed to do this."""


class RateLimitError(HTTPStatusError):
    """429: too many requests or tokens; ``retry_after`` says when to try again, if known."""


class ConnectError(StreamError):
    """The server could not be reached."""


class ProviderError(StreamError):
    """The server reported an error inside a stream that had already started."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        error_code: str | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message, transcript=transcript)
        self.error_type = error_type
        self.error_code = error_code


class TruncatedError(StreamError):
    """The connection closed before the answer was complete."""


class StalledError(StreamError):
    """No bytes arrived for longer than the stall timeout."""


class ProtocolError(StreamError):
    """The server sent something that is not the stream its format promises."""


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
    "StreamError",
    "TruncatedError",
]
