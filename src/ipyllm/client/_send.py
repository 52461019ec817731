"""Sending one answer's request until its stream starts: retries, waits, clear errors.

Retries happen only before the first byte, bounded in count and in total time; a
server's ``retry-after`` is obeyed, and shared with every stream to that endpoint.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from typing import TypeVar

import httpx

from .._redact import redact
from ..dialects import RequestSpec
from ..errors import (
    ConnectError,
    ProtocolError,
    RateLimitError,
    StalledError,
    StreamError,
    TruncatedError,
)
from ..transcript import Transcript
from ._limits import gate_for
from ._net import describe, origin, read_some, snippet_of
from ._responses import (
    ANSWER_BODY_LIMIT,
    ERROR_BODY_LIMIT,
    error_details,
    read_whole,
    server_name,
    status_error,
)
from ._retry import retry_delay, should_retry
from ._target import Target

E = TypeVar("E", bound=StreamError)


class Sender:
    """Opens one answer's response, and makes its errors (context attached once)."""

    def __init__(
        self,
        target: Target,
        transcript: Transcript,
        *,
        max_retries: int,
        retry_budget: float,
        connect_timeout: float,
        stall_timeout: float,
    ) -> None:
        self.target = target
        self.transcript = transcript
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.name = server_name(target)
        """The server as messages name it (the address chosen, else the provider)."""

    def error(self, kind: type[E], message: str) -> E:
        """An error with its context attached once: the key redacted, provider, transcript."""
        return kind(
            redact(message, self.target.api_key),
            provider=self.target.provider,
            transcript=self.transcript,
        )

    def broken(self, exc: httpx.HTTPError) -> StreamError:
        """The connection failed mid-stream, before the answer was complete."""
        shown = len(self.transcript.text)
        if isinstance(exc, httpx.ReadTimeout):
            return self.error(
                StalledError,
                f"{self.name} sent nothing for {self.stall_timeout:g} s; "
                f"the stream stalled after {shown} characters",
            )
        # A peer that closed or reset the connection is said in our words, not httpx's.
        closed = isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)
        how = "" if closed else f" ({describe(exc)})"
        return self.error(
            TruncatedError,
            f"the connection to {self.name} closed before the answer was complete{how}, "
            f"after {shown} characters",
        )

    async def open(
        self, client: httpx.AsyncClient, spec: RequestSpec
    ) -> tuple[httpx.Response, bytes | None]:
        """Send the request, retrying what is worth retrying, until a stream starts.

        Also returns the body of a 2xx JSON answer, read whole (else None).
        """
        deadline = time.monotonic() + self.retry_budget
        gate = gate_for(spec.url)
        for attempt in range(self.max_retries + 1):
            await gate.wait()  # another stream to this endpoint was told to wait
            request = client.build_request(
                spec.method, spec.url, headers=spec.headers, json=spec.json
            )
            error: StreamError
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                error = self._timeout_error(exc, spec.url)
                retryable = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            except httpx.HTTPError as exc:
                error = self.error(
                    ConnectError, f"could not reach {self._where(spec.url)}: {why(exc)}"
                )
                retryable = True
            else:
                if response.is_success:
                    return response, await self._check_is_stream(response)
                error = await status_error(self.target, response, self.transcript)
                retryable = should_retry(error, response.headers)
                if isinstance(error, RateLimitError) and error.retry_after:
                    gate.pause(error.retry_after)  # every stream to this server waits too
            delay = retry_delay(error, attempt, self.max_retries, deadline) if retryable else None
            if delay is None:
                raise error
            self.transcript.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _timeout_error(self, exc: httpx.TimeoutException, url: str) -> StreamError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return self.error(
                ConnectError,
                f"could not connect to {self._where(url)} within {self.connect_timeout:g} s",
            )
        return self.error(
            StalledError, f"{self.name} sent no response for {self.stall_timeout:g} s"
        )

    def _where(self, url: str) -> str:
        """The server a connection is for: its address when chosen, else provider and URL."""
        if self.target.endpoint:
            return self.name
        return f"{self.target.provider} at {origin(url)}"

    async def _check_is_stream(self, response: httpx.Response) -> bytes | None:
        """None for a stream; a web page raises; a JSON body is read whole and returned.

        A JSON body is a server that ignored ``"stream": true``: a whole answer, or an
        error document (:meth:`_answer` tells them apart).
        """
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("text/html", "application/json"):
            return None
        if content_type == "application/json":
            if self.target.dialect.framing == "ndjson":
                return None  # some Ollama versions label NDJSON as JSON; a whole answer is a line
            try:
                body = await read_whole(response, ANSWER_BODY_LIMIT)
            except httpx.HTTPError as exc:
                raise self.broken(exc) from None
            if body is None:
                raise self.error(
                    ProtocolError,
                    f"{self.name} answered with a JSON document of more than "
                    f"{ANSWER_BODY_LIMIT >> 20} MiB instead of a stream",
                )
            return body
        body = await read_some(response, ERROR_BODY_LIMIT)
        await response.aclose()
        details = error_details(body, content_type)
        raise self.error(
            ProtocolError,
            f"{self.name} answered with an HTML page instead of a stream "
            f"(HTTP {response.status_code}): {details.message or snippet_of(body)}",
        )


def why(exc: httpx.HTTPError) -> str:
    """Why a connection could not be made, in words, not the socket library's."""
    cause: BaseException | None = exc
    for _ in range(10):  # the chain of causes, not forever should it loop
        if cause is None:
            break
        if isinstance(cause, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused (is the server running, on that port?)"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "the network or host is unreachable"
        cause = cause.__cause__ or cause.__context__
    return describe(exc)
