"""One answer's request and stream: bytes -> wire events -> deltas -> its Transcript.

:class:`Stream` is the only writer of a :class:`~ipyllm.Transcript` fed from the
network; it retries what is worth retrying before the first byte, turns every
failure into a typed error that keeps what arrived, and closes the connection
when its reader stops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from .._json import loads
from .._redact import redact
from .._text import snippet
from ..dialects import Message, Parser, WireEvent
from ..errors import (
    ConnectError,
    IpyllmError,
    ProtocolError,
    StalledError,
    StreamError,
    TruncatedError,
)
from ..events import ErrorEvent, Event, Finish, RawEvent
from ..transcript import Transcript
from ._framing import FramingDecoder, JSONLine
from ._net import body_chunks, describe, origin, read_some, snippet_of, ssl_context, text_of
from ._responses import (
    ANSWER_BODY_LIMIT,
    EARLY_FAILURE_HINT,
    ERROR_BODY_LIMIT,
    error_details,
    is_error_document,
    provider_error,
    read_whole,
    status_error,
)
from ._retry import retry_delay, should_retry
from ._target import Target

if TYPE_CHECKING:
    from ._replay import Recorder  # sqlite3 loads only for those who record

E = TypeVar("E", bound=StreamError)


class Stream:
    """An answer being streamed: iterate it for normalized events.

    ``transcript`` is kept up to date as events arrive and stays readable after
    the stream ends, is stopped (its consuming task cancelled, or :meth:`aclose`)
    or fails. Iterating raises a :class:`ipyllm.StreamError` on failure, after
    every event received before it has been yielded.
    """

    def __init__(
        self,
        target: Target,
        messages: list[Message],
        params: dict[str, Any],
        *,
        raw: bool = False,
        max_retries: int = 2,
        retry_budget: float = 60.0,
        stall_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.target = target
        self.transcript = Transcript(
            provider=target.provider, model=target.model, messages=messages, params=params
        )
        self.raw = raw
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self._request = target.dialect.build_request(
            messages,
            model=target.model,
            params=params,
            api_key=target.api_key,
            base_url=target.base_url,
        )
        self._events: AsyncGenerator[Event | RawEvent, None] | None = None
        self._transport = transport
        self._recorder = recorder

    def __repr__(self) -> str:
        return (
            f"<Stream {self.transcript.provider}/{self.transcript.model} {self.transcript.status}>"
        )

    def __aiter__(self) -> AsyncIterator[Event | RawEvent]:
        # The generator itself: no wrapper coroutine per event on the hot path.
        if self._events is None:
            self._events = self._run()
        return self._events

    async def __anext__(self) -> Event | RawEvent:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection; the transcript keeps what arrived."""
        if self._events is not None:
            await self._events.aclose()
        self.transcript.end("stopped")

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the pipeline ------------------------------------------------------
    async def _run(self) -> AsyncGenerator[Event | RawEvent, None]:
        transcript = self.transcript
        transcript.start()
        try:
            async with self._http_client() as client:
                response, whole = await self._open(client)
                try:
                    events = self._read(response) if whole is None else self._answer(whole)
                    async for event in events:
                        yield event
                finally:
                    await response.aclose()
        except StreamError as error:
            transcript.end("error", error)
            raise
        except BaseException:  # cancelled (Stop), closed early, or interrupted
            transcript.end("stopped")
            raise
        else:
            transcript.end("done")
        finally:
            if self._recorder is not None:
                self._recorder.save(transcript)

    async def _read(self, response: httpx.Response) -> AsyncGenerator[Event | RawEvent, None]:
        """One generator from socket to caller: each event is applied and yielded once."""
        transcript = self.transcript
        dialect = self.target.dialect
        parser = dialect.new_parser()
        decoder = FramingDecoder(dialect.framing, error_field=dialect.error_field)
        received = 0
        finished = False  # a finish reason arrived: servers that skip [DONE] after it are done
        server_error: ErrorEvent | None = None
        try:
            # Closed explicitly: a generator left suspended by the break below
            # would be finalized later, on whatever loop is still around.
            async with aclosing(body_chunks(response)) as chunks:
                async for chunk in chunks:
                    received += len(chunk)
                    for wire_event in decoder.feed(chunk):
                        if self.raw:
                            yield self._raw_event(wire_event)
                        for event in self._interpret(parser, wire_event):
                            kind = type(event)
                            if kind is Finish:
                                finished = True
                            elif kind is ErrorEvent and server_error is None:
                                server_error = cast(ErrorEvent, event)
                            transcript.apply(event)
                            yield event
                        if parser.terminated:
                            # Checked per event, not per read: what a server sends after its
                            # end (LiteLLM's [DONE] after response.completed) is never read.
                            break
                    if parser.terminated:
                        break
                else:
                    for wire_event in decoder.close():
                        if self.raw:
                            yield self._raw_event(wire_event)
                        for event in self._interpret(parser, wire_event):
                            kind = type(event)
                            if kind is Finish:
                                finished = True
                            elif kind is ErrorEvent and server_error is None:
                                server_error = cast(ErrorEvent, event)
                            transcript.apply(event)
                            yield event
                        if parser.terminated:
                            break
        except httpx.HTTPError as exc:
            if not (parser.terminated or finished):
                raise self._broken(exc) from None
        if server_error is not None:
            raise provider_error(self.target.provider, server_error, transcript, mid_stream=True)
        if parser.terminated or finished:
            self._note_if_empty()
            return
        if received == 0:
            raise self._empty_body()
        where = (
            "in the middle of an event" if decoder.ended_mid_event else "before the answer ended"
        )
        raise self._error(
            TruncatedError,
            f"the stream from {self.target.provider} ended {where} (no finish reason or end "
            f"marker) after {len(transcript.text)} characters",
        )

    async def _answer(self, body: bytes) -> AsyncGenerator[Event | RawEvent, None]:
        """A whole JSON answer where a stream was asked for: its events, all at once."""
        provider, transcript = self.target.provider, self.transcript
        if not body.strip():
            raise self._empty_body()
        if self.raw:
            yield self._raw_event(JSONLine(text_of(body)))
        try:
            answer = loads(body)
        except ValueError:
            answer = None
        events = None if answer is None else self._interpret_answer(answer)
        if events is None:  # not an answer: the server's own words, or what it sent
            details = error_details(body, "application/json")
            if is_error_document(answer) and details.message:
                message = redact(details.message, self.target.api_key)
                said = ErrorEvent(message, details.type, details.code)
                raise provider_error(provider, said, transcript, mid_stream=False)
            raise self._error(
                ProtocolError,
                f"{provider} answered with a JSON document instead of a stream: {snippet_of(body)}",
            )
        server_error = next((e for e in events if type(e) is ErrorEvent), None)
        for event in events:
            transcript.apply(event)
            yield event
        if server_error is not None:
            raise provider_error(provider, server_error, transcript, mid_stream=False)
        self._note_if_empty()

    def _empty_body(self) -> ProtocolError:
        return self._error(
            ProtocolError,
            f"{self.target.provider} answered with an empty body instead of a stream; "
            + EARLY_FAILURE_HINT,
        )

    def _note_if_empty(self) -> None:
        """An answer that ended well with nothing in it says what may have happened."""
        transcript = self.transcript
        if (
            transcript.text
            or transcript.reasoning
            or transcript.refusal
            or transcript.tool_calls
            or transcript.cut_off == "content_filter"  # the filter said why
        ):
            return
        transcript.notes.append("The answer is empty: " + EARLY_FAILURE_HINT)

    def _error(self, kind: type[E], message: str) -> E:
        """An error with its context attached once: the key redacted, provider, transcript."""
        return kind(
            redact(message, self.target.api_key),
            provider=self.target.provider,
            transcript=self.transcript,
        )

    def _raw_event(self, wire_event: WireEvent) -> RawEvent:
        started = self.transcript.started_at or 0.0
        # Shown in the --events panel: a server that echoes the key must not put it on screen.
        data = redact(wire_event.data, self.target.api_key)
        return RawEvent(data, wire_event.event, time.monotonic() - started)

    def _broken(self, exc: httpx.HTTPError) -> StreamError:
        """The connection failed mid-stream, before the answer was complete."""
        shown = len(self.transcript.text)
        if isinstance(exc, httpx.ReadTimeout):
            return self._error(
                StalledError,
                f"{self.target.provider} sent nothing for {self.stall_timeout:g} s; "
                f"the stream stalled after {shown} characters",
            )
        return self._error(
            TruncatedError,
            f"the connection to {self.target.provider} broke mid-stream "
            f"({describe(exc)}) after {shown} characters",
        )

    def _http_client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(
            connect=self.connect_timeout, read=self.stall_timeout, write=30.0, pool=30.0
        )
        transport = self._transport or self.target.dialect.transport(self.target.base_url)
        if self._recorder is not None:
            inner = transport or httpx.AsyncHTTPTransport(verify=ssl_context())
            transport = self._recorder.wrap(inner)
        return httpx.AsyncClient(timeout=timeout, transport=transport, verify=ssl_context())

    async def _open(self, client: httpx.AsyncClient) -> tuple[httpx.Response, bytes | None]:
        """Send the request, retrying what is worth retrying, until a stream starts.

        Also returns the body of a 2xx JSON answer, read whole (else None).
        """
        spec = self._request
        deadline = time.monotonic() + self.retry_budget
        for attempt in range(self.max_retries + 1):
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
                error = self._error(
                    ConnectError,
                    f"could not reach {self.target.provider} at {origin(spec.url)}: "
                    f"{describe(exc)}",
                )
                retryable = True
            else:
                if response.is_success:
                    return response, await self._check_is_stream(response)
                error = await status_error(self.target, response, self.transcript)
                retryable = should_retry(error, response.headers)
            delay = retry_delay(error, attempt, self.max_retries, deadline) if retryable else None
            if delay is None:
                raise error
            self.transcript.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _timeout_error(self, exc: httpx.TimeoutException, url: str) -> StreamError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return self._error(
                ConnectError,
                f"could not connect to {self.target.provider} at {origin(url)} "
                f"within {self.connect_timeout:g} s",
            )
        return self._error(
            StalledError, f"{self.target.provider} sent no response for {self.stall_timeout:g} s"
        )

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
                raise self._broken(exc) from None
            if body is None:
                raise self._error(
                    ProtocolError,
                    f"{self.target.provider} answered with a JSON document of more than "
                    f"{ANSWER_BODY_LIMIT >> 20} MiB instead of a stream",
                )
            return body
        body = await read_some(response, ERROR_BODY_LIMIT)
        await response.aclose()
        details = error_details(body, content_type)
        raise self._error(
            ProtocolError,
            f"{self.target.provider} answered with an HTML page instead of a stream "
            f"(HTTP {response.status_code}): {details.message or snippet_of(body)}",
        )

    def _interpret_answer(self, answer: Any) -> list[Event] | None:
        parser = self.target.dialect.new_parser()
        try:
            events = parser.parse_answer(answer)
        except IpyllmError:
            raise
        except Exception as exc:  # as in _interpret: a shape no rule foresaw
            raise self._error(
                ProtocolError,
                f"could not interpret a {self.target.provider} answer ({type(exc).__name__})",
            ) from exc
        return None if events is None else [self._redacted(event) for event in events]

    def _interpret(self, parser: Parser, wire_event: WireEvent) -> list[Event]:
        try:
            events = parser.parse(wire_event)
        except ProtocolError as error:  # the dialect's own words; context is added here, once
            raise self._error(ProtocolError, error.message) from None
        except IpyllmError:
            raise
        except Exception as exc:  # a shape no dialect rule foresaw: report it, never crash raw
            raise self._error(
                ProtocolError,
                f"could not interpret a {self.target.provider} event "
                f"({type(exc).__name__}): {snippet(wire_event.data)}",
            ) from exc
        if any(type(event) is ErrorEvent for event in events):  # rare: redact what it quotes
            events = [self._redacted(event) for event in events]
        return events

    def _redacted(self, event: Event) -> Event:
        if type(event) is not ErrorEvent:
            return event
        key = self.target.api_key
        raw = loads(redact(json.dumps(event.raw), key)) if event.raw else {}
        return ErrorEvent(redact(event.message, key), event.type, event.code, raw)
