"""Every exception ipyllm raises on purpose, in one place. Messages are written for people.

::

    IpyllmError
    ├── ConfigurationError (also a ValueError): wrong before anything was sent
    │   ├── InterpolationError      a {placeholder} in a prompt cannot be filled in
    │   ├── ReplayMissError         replay asked for, no recording of this request
    │   └── StoreError              the record/log store is unusable (corrupt, locked...)
    └── StreamError: a request or stream failed; ``transcript`` keeps what arrived
        ├── HTTPStatusError         an error status before the stream started
        │   ├── AuthenticationError     401/403: the key is missing, wrong or not allowed
        │   └── RateLimitError          429: ``retry_after`` says when to try again
        ├── ConnectError            the server could not be reached
        ├── ProviderError           the server reported an error inside the stream
        ├── TruncatedError          the connection closed before the answer was complete
        ├── StalledError            nothing arrived for longer than the stall timeout
        ├── ProtocolError           the bytes are not the stream the format promises
        └── StructuredOutputError   an answer asked for with a schema is not valid JSON, or
                                    does not fit the schema (``transcript.text`` keeps it)

Context (the transcript, the provider, the HTTP status) is given when an error is
raised and not changed afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .transcript import Transcript


class IpyllmError(Exception):
    """Base class of every error ipyllm raises on purpose."""


class ConfigurationError(IpyllmError, ValueError):
    """Something is wrong before anything was sent: unknown provider, missing API key..."""


class InterpolationError(ConfigurationError):
    """A ``{placeholder}`` in a prompt names a variable but cannot be filled in."""


class ReplayMissError(ConfigurationError):
    """Replay was asked for, but the store holds no recording of this request."""


class StoreError(ConfigurationError):
    """The store cannot be used (corrupt, locked, unwritable); the notebook goes on without it."""


class StreamError(IpyllmError):
    """A request or stream failed. ``transcript`` keeps everything received before it."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
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
        provider: str | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message, provider=provider, transcript=transcript)
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
    """The server reported an error inside a stream (or as its whole answer)."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        error_code: str | None = None,
        provider: str | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message, provider=provider, transcript=transcript)
        self.error_type = error_type
        self.error_code = error_code


class TruncatedError(StreamError):
    """The connection closed before the answer was complete."""


class StalledError(StreamError):
    """No bytes arrived for longer than the stall timeout."""


class ProtocolError(StreamError):
    """The server sent something that is not the stream its format promises."""


class StructuredOutputError(StreamError):
    """An answer asked for with a schema is not valid JSON, or does not fit the schema.

    The answer arrived whole: ``transcript.text`` keeps it as sent, and ``problems`` lists
    what is wrong (a JSON syntax error, or each place the value breaks the schema).
    """

    def __init__(
        self,
        message: str,
        *,
        problems: list[str] | None = None,
        provider: str | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(message, provider=provider, transcript=transcript)
        self.problems = list(problems or [])


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "HTTPStatusError",
    "InterpolationError",
    "IpyllmError",
    "ProtocolError",
    "ProviderError",
    "RateLimitError",
    "ReplayMissError",
    "StalledError",
    "StoreError",
    "StreamError",
    "StructuredOutputError",
    "TruncatedError",
]
