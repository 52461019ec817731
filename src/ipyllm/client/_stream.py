"""One answer's request and stream: bytes -> wire events -> deltas -> its Transcript.

:class:`Stream` is the only writer of a :class:`~ipyllm.Transcript` fed from the
network; it retries what is worth retrying before the first byte, turns every
failure into a typed error that keeps what arrived, and closes the connection
when its reader stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from .._json import loads
from .._redact import redact
from .._text import snippet
from ..dialects import Message, Parser, Schema, WireEvent
from ..errors import (
    IpyllmError,
    ProtocolError,
    StreamError,
    TruncatedError,
)
from ..events import ErrorEvent, Event, Finish, RawEvent
from ..pricing import answer_cost
from ..transcript import Transcript
from ._framing import FramingDecoder, JSONLine
from ._net import body_chunks, default_transport, snippet_of, ssl_context, text_of
from ._pool import shared_client
from ._responses import (
    EARLY_FAILURE_HINT,
    error_details,
    is_error_document,
    provider_error,
)
from ._send import Sender
from ._structured import structured_value
from ._target import Target

if TYPE_CHECKING:
    from ._replay import Recorder  # sqlite3 loads only for those who record

E = TypeVar("E", bound=StreamError)


@dataclass(slots=True)
class _Ending:
    """How a stream's answer ended, as its events said."""

    finished: bool = False  # a finish reason arrived: servers that skip [DONE] after it are done
    server_error: ErrorEvent | None = None


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
        prices: Mapping[str, Any] | None = None,
        schema: Schema | None = None,
    ) -> None:
        self.target = target
        self.transcript = Transcript(
            provider=target.provider, model=target.model, messages=messages, params=params
        )
        self.schema = schema
        """The schema a structured answer must fit: parsed into ``transcript.parsed`` at
        the end, or a StructuredOutputError."""
        self.transcript.schema = None if schema is None else schema.json
        self.transcript.model_named = target.model_named
        self.transcript.endpoint = target.endpoint
        self._prices = prices
        self.raw = raw
        self._request = target.dialect.build_request(
            messages,
            model=target.model,
            params=params,
            api_key=target.api_key,
            base_url=target.base_url,
            schema=schema,
        )
        self._sender = Sender(
            target,
            self.transcript,
            max_retries=max_retries,
            retry_budget=retry_budget,
            connect_timeout=connect_timeout,
            stall_timeout=stall_timeout,
        )
        self._events: AsyncGenerator[Event | RawEvent, None] | None = None
        self._transport = transport
        self._recorder = recorder

    # The retry and timeout settings live in the sender, which reads them when it sends:
    # set on a stream before it starts, they apply (one value each, not two copies).
    @property
    def max_retries(self) -> int:
        return self._sender.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self._sender.max_retries = value

    @property
    def retry_budget(self) -> float:
        """Seconds that retries of one request may take in all."""
        return self._sender.retry_budget

    @retry_budget.setter
    def retry_budget(self, value: float) -> None:
        self._sender.retry_budget = value

    @property
    def stall_timeout(self) -> float:
        """Seconds without a byte from the server before the stream counts as stalled."""
        return self._sender.stall_timeout

    @stall_timeout.setter
    def stall_timeout(self, value: float) -> None:
        self._sender.stall_timeout = value

    @property
    def connect_timeout(self) -> float:
        return self._sender.connect_timeout

    @connect_timeout.setter
    def connect_timeout(self, value: float) -> None:
        self._sender.connect_timeout = value

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
            client, owned = self._http_client()
            try:
                response, whole = await self._sender.open(client, self._request)
                try:
                    events = self._read(response) if whole is None else self._answer(whole)
                    async for event in events:
                        yield event
                finally:
                    await response.aclose()
            finally:
                if owned:
                    await client.aclose()
            if self.schema is not None:
                transcript.parsed = structured_value(transcript, self.schema)
        except StreamError as error:
            transcript.end("error", error)
            raise
        except BaseException:  # cancelled (Stop), closed early, or interrupted
            transcript.end("stopped")
            raise
        else:
            transcript.end("done")
        finally:
            transcript.cost = answer_cost(
                transcript.provider,
                transcript.served_model or transcript.model,
                transcript.usage,
                base_url=self.target.base_url,
                prices=self._prices,
            )
            if self._recorder is not None:
                self._recorder.save(transcript)

    async def _read(self, response: httpx.Response) -> AsyncGenerator[Event | RawEvent, None]:
        """One generator from socket to caller: each event is applied and yielded once."""
        transcript = self.transcript
        dialect = self.target.dialect
        parser = dialect.new_parser(self.schema)
        decoder = FramingDecoder(dialect.framing, error_field=dialect.error_field)
        received = 0
        ending = _Ending()
        try:
            # Closed explicitly: a generator left suspended by the break below
            # would be finalized later, on whatever loop is still around.
            async with aclosing(body_chunks(response)) as chunks:
                async for chunk in chunks:
                    received += len(chunk)
                    for event in self._events_of(parser, decoder.feed(chunk), ending):
                        yield event
                    if parser.terminated:
                        break
                else:
                    for event in self._events_of(parser, decoder.close(), ending):
                        yield event
        except httpx.HTTPError as exc:
            if not (parser.terminated or ending.finished):
                raise self._sender.broken(exc) from None
        if ending.server_error is not None:
            raise provider_error(
                self.target.provider,
                ending.server_error,
                transcript,
                mid_stream=True,
                name=self._name,
            )
        if parser.terminated or ending.finished:
            self._note_if_empty()
            return
        if received == 0:
            raise self._empty_body()
        where = (
            "in the middle of an event"
            if decoder.ended_mid_event
            else "before the answer was complete"
        )
        raise self._error(
            TruncatedError,
            f"the stream from {self._name} ended {where} (no finish reason or end "
            f"marker), after {len(transcript.text)} characters",
        )

    def _events_of(
        self, parser: Parser, wire_events: Sequence[WireEvent], ending: _Ending
    ) -> Iterator[Event | RawEvent]:
        """The events of some wire events, in order, until the dialect's end marker
        (what a server sends after its end, LiteLLM's [DONE] after response.completed,
        is never read); each applied to the transcript just before it is yielded, so a
        stop between two events keeps exactly what was shown. Notes in ``ending`` how
        the answer ended."""
        transcript = self.transcript
        for wire_event in wire_events:
            if self.raw:
                yield self._raw_event(wire_event)
            for event in self._interpret(parser, wire_event):
                kind = type(event)
                if kind is Finish:
                    ending.finished = True
                elif kind is ErrorEvent and ending.server_error is None:
                    ending.server_error = cast(ErrorEvent, event)
                transcript.apply(event)
                yield event
            if parser.terminated:
                return

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
                raise provider_error(provider, said, transcript, mid_stream=False, name=self._name)
            raise self._error(
                ProtocolError,
                f"{self._name} answered with a JSON document instead of a stream: "
                f"{snippet_of(body)}",
            )
        server_error = next((e for e in events if type(e) is ErrorEvent), None)
        for event in events:
            transcript.apply(event)
            yield event
        if server_error is not None:
            raise provider_error(
                provider, server_error, transcript, mid_stream=False, name=self._name
            )
        self._note_if_empty()

    def _empty_body(self) -> ProtocolError:
        return self._error(
            ProtocolError,
            f"{self._name} answered with an empty body instead of a stream; " + EARLY_FAILURE_HINT,
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

    @property
    def _name(self) -> str:
        """The server as messages name it (the address chosen, else the provider)."""
        return self._sender.name

    def _error(self, kind: type[E], message: str) -> E:
        return self._sender.error(kind, message)

    def _raw_event(self, wire_event: WireEvent) -> RawEvent:
        started = self.transcript.started_at or 0.0
        # Shown in the --events panel: a server that echoes the key must not put it on screen.
        data = redact(wire_event.data, self.target.api_key)
        return RawEvent(data, wire_event.event, time.monotonic() - started)

    def _http_client(self) -> tuple[httpx.AsyncClient, bool]:
        """The client to send with, and whether this stream owns it (and must close it):
        a batch's shared one for the network, else one of its own."""
        timeout = httpx.Timeout(
            connect=self.connect_timeout, read=self.stall_timeout, write=30.0, pool=30.0
        )
        transport = self._transport or self.target.dialect.transport(self.target.base_url)
        if self._recorder is not None:
            inner = (
                transport or default_transport() or httpx.AsyncHTTPTransport(verify=ssl_context())
            )
            transport = self._recorder.wrap(inner)
        if transport is None:
            shared = shared_client(timeout)
            if shared is not None:
                return shared, False
            transport = default_transport()
        client = httpx.AsyncClient(timeout=timeout, transport=transport, verify=ssl_context())
        return client, True

    def _interpret_answer(self, answer: Any) -> list[Event] | None:
        parser = self.target.dialect.new_parser(self.schema)
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
            if parser.model is not None and self.transcript.served_model is None:
                self.transcript.served_model = parser.model
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
