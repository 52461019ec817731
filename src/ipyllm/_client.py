"""Sending a request and reading its stream: retries, clear errors, stalls, cancellation."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, Literal

import httpx

from ._config import Target, resolve
from ._dialects import Message, Parser, RequestSpec
from ._errors import (
    AuthenticationError,
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
from ._json import loads
from ._redact import redact
from ._replay import Recorder, ReplayMissError, ReplayTransport
from ._store import Store, request_key
from ._transcript import Transcript
from .events import ErrorEvent, Event, RawEvent
from .ndjson import LineDecoder
from .sse import ServerSentEvent, SSEDecoder, _snippet

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_BACKOFF = 8.0
_ERROR_BODY_LIMIT = 64 * 1024


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
        self._events: AsyncIterator[Event | RawEvent] | None = None
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
            await self._events.aclose()  # type: ignore[attr-defined]
        self.transcript.end("stopped")

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the pipeline ------------------------------------------------------
    async def _run(self) -> AsyncIterator[Event | RawEvent]:
        transcript = self.transcript
        transcript.start()
        try:
            async with self._http_client() as client:
                response = await self._open(client)
                try:
                    # One generator from socket to caller: each event is yielded once.
                    parser = self.target.dialect.new_parser()
                    decoder = _FramingDecoder(self.target.dialect.framing)
                    received = 0
                    try:
                        # Closed explicitly: a generator left suspended by the break below
                        # would be finalized later, on whatever loop is still around.
                        async with aclosing(response.aiter_bytes()) as chunks:
                            async for chunk in chunks:
                                received += len(chunk)
                                for wire_event in decoder.feed(chunk):
                                    if self.raw:
                                        yield self._raw_event(wire_event)
                                    for event in self._interpret(parser, wire_event):
                                        transcript.apply(event)
                                        yield event
                                if parser.terminated:
                                    break
                            else:
                                for wire_event in decoder.close():
                                    for event in self._interpret(parser, wire_event):
                                        transcript.apply(event)
                                        yield event
                    except httpx.HTTPError as exc:
                        self._check_broken(exc, parser)
                    self._check_end(parser, decoder, received)
                finally:
                    await response.aclose()
        except StreamError as error:
            error.message = redact(error.message, self.target.api_key)
            error.args = (error.message,)
            error.transcript = transcript
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

    def _raw_event(self, wire_event: ServerSentEvent) -> RawEvent:
        started = self.transcript.started_at or 0.0
        # Shown in the --events panel: a server that echoes the key must not put it on screen.
        data = redact(wire_event.data, self.target.api_key)
        return RawEvent(data, wire_event.event, time.monotonic() - started)

    def _check_broken(self, exc: httpx.HTTPError, parser: Parser) -> None:
        """The connection failed mid-stream: an error unless the answer was already complete."""
        transcript = self.transcript
        if _complete(parser, transcript):
            return
        if isinstance(exc, httpx.ReadTimeout):
            raise StalledError(
                f"{self.target.provider} sent nothing for {self.stall_timeout:g} s; "
                f"the stream stalled after {len(transcript.text)} characters"
            ) from None
        raise TruncatedError(
            f"the connection to {self.target.provider} broke mid-stream "
            f"({_describe(exc)}) after {len(transcript.text)} characters"
        ) from None

    def _http_client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(
            connect=self.connect_timeout, read=self.stall_timeout, write=30.0, pool=30.0
        )
        transport = self._transport or self.target.dialect.transport(self.target.base_url)
        if self._recorder is not None:
            inner = transport or httpx.AsyncHTTPTransport(verify=_ssl_context())
            transport = self._recorder.wrap(inner)
        return httpx.AsyncClient(timeout=timeout, transport=transport, verify=_ssl_context())

    async def _open(self, client: httpx.AsyncClient) -> httpx.Response:
        """Send the request, retrying what is worth retrying, until a stream starts."""
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
                error = self._timeout_error(exc, spec)
                retryable = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            except httpx.HTTPError as exc:
                error = ConnectError(
                    f"could not reach {self.target.provider} at {_origin(spec.url)}: "
                    f"{_describe(exc)}"
                )
                retryable = True
            else:
                if response.is_success:
                    await self._check_is_stream(response)
                    return response
                error = await status_error(self.target, response)
                retryable = _should_retry(error, response.headers)
            delay = self._retry_delay(error, attempt, deadline) if retryable else None
            if delay is None:
                raise error
            self.transcript.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _timeout_error(self, exc: httpx.TimeoutException, spec: RequestSpec) -> StreamError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return ConnectError(
                f"could not connect to {self.target.provider} at {_origin(spec.url)} "
                f"within {self.connect_timeout:g} s"
            )
        return StalledError(f"{self.target.provider} sent no response for {self.stall_timeout:g} s")

    def _retry_delay(self, error: StreamError, attempt: int, deadline: float) -> float | None:
        if attempt >= self.max_retries:
            return None
        remaining = deadline - time.monotonic()
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > 0:
            return retry_after if retry_after <= remaining else None
        backoff = min(_MAX_BACKOFF, 0.5 * 2**attempt) * (1 - 0.25 * random.random())
        return backoff if backoff <= remaining else None

    async def _check_is_stream(self, response: httpx.Response) -> None:
        """A 2xx answer that is a web page or a JSON document is not the stream asked for."""
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("text/html", "application/json"):
            return
        if content_type == "application/json" and self.target.dialect.framing == "ndjson":
            return  # some Ollama versions label NDJSON as JSON
        body = await _read_some(response, _ERROR_BODY_LIMIT)
        await response.aclose()
        details = _error_details(body, content_type)
        provider = self.target.provider
        if content_type == "application/json" and details.message:
            raise ProviderError(
                f"{provider} reported an error: {details.message}",
                error_type=details.type,
                error_code=details.code,
            )
        what = "an HTML page" if content_type == "text/html" else "a JSON document"
        raise ProtocolError(
            f"{provider} answered with {what} instead of a stream "
            f"(HTTP {response.status_code}): {details.message or _snippet(_text(body))}"
        )

    def _interpret(self, parser: Parser, wire_event: ServerSentEvent) -> list[Event]:
        try:
            events = parser.parse(wire_event)
        except IpyllmError:
            raise
        except Exception as exc:  # a shape no dialect rule foresaw: report it, never crash raw
            raise ProtocolError(
                f"could not interpret a {self.target.provider} event "
                f"({type(exc).__name__}): {_snippet(wire_event.data)}"
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

    def _check_end(self, parser: Parser, decoder: _FramingDecoder, received: int) -> None:
        transcript = self.transcript
        provider = self.target.provider
        server_error = transcript.server_error
        if server_error is not None:
            raise _provider_error(provider, server_error)
        if _complete(parser, transcript):
            return
        if received == 0:
            raise ProtocolError(f"{provider} answered with an empty body instead of a stream")
        where = (
            "in the middle of an event" if decoder.ended_mid_event else "before the answer ended"
        )
        raise TruncatedError(
            f"the stream from {provider} ended {where} (no finish reason or end marker) "
            f"after {len(transcript.text)} characters"
        )


async def status_error(target: Target, response: httpx.Response) -> HTTPStatusError:
    """A typed error with the server's own words, from an error response (which it closes)."""
    body = await _read_some(response, _ERROR_BODY_LIMIT)
    await response.aclose()
    provider, status = target.provider, response.status_code
    details = _error_details(body, response.headers.get("content-type", ""))
    if details.message:  # servers quote keys back (masked or not)
        details.message = redact(details.message, target.api_key)
    retry_after = _retry_after(response.headers)
    said = f": {details.message.rstrip('.')}." if details.message else "."
    heading = f"HTTP {status}" + (f" {response.reason_phrase}" if response.reason_phrase else "")
    error_class: type[HTTPStatusError] = HTTPStatusError
    if status in (401, 403):
        error_class = AuthenticationError
        env = target.dialect.api_key_env
        hint = f" Check the API key: set {env} or pass api_key=..." if env else ""
        message = f"{provider} refused the request ({heading}){said}{hint}"
    elif status == 429:
        error_class = RateLimitError
        when = (
            f" Retry after {retry_after:g} s." if retry_after is not None else " Try again later."
        )
        message = f"{provider} is rate limiting requests ({heading}){said}{when}"
    else:
        message = f"{provider} answered {heading}{said}"
    return error_class(
        message,
        status_code=status,
        server_message=details.message,
        error_type=details.type,
        error_code=details.code,
        retry_after=retry_after,
    )


def _complete(parser: Parser, transcript: Transcript) -> bool:
    # A finish reason is enough: servers that skip [DONE] after it are complete.
    return parser.terminated or transcript.finish_reason is not None


def _provider_error(provider: str, event: ErrorEvent) -> ProviderError:
    kind = f" ({event.type})" if event.type else ""
    return ProviderError(
        f"{provider} reported an error mid-stream{kind}: {event.message}",
        error_type=event.type,
        error_code=event.code,
    )


class _FramingDecoder:
    """SSE events, or NDJSON lines presented as events, so dialects see one shape."""

    def __init__(self, framing: str) -> None:
        self._sse = SSEDecoder() if framing == "sse" else None
        self._lines = LineDecoder()
        self.ended_mid_event = False
        """Set by :meth:`close`: the stream stopped inside an event or line."""

    def feed(self, data: bytes) -> Iterable[ServerSentEvent]:
        if self._sse:
            return self._sse.feed(data)
        return [ServerSentEvent(line) for line in self._lines.feed(data)]

    def close(self) -> Iterable[ServerSentEvent]:
        if self._sse:
            self.ended_mid_event = self._sse.has_pending
            return self._sse.close()
        # NDJSON: a last line without its newline is whole if it parses, else cut short.
        lines = self._lines.close()
        complete = [line for line in lines if _is_json(line)]
        self.ended_mid_event = len(complete) != len(lines)
        return [ServerSentEvent(line) for line in complete]


def _is_json(text: str) -> bool:
    try:
        loads(text)
    except ValueError:
        return False
    return True


class _ErrorDetails:
    __slots__ = ("code", "message", "type")

    def __init__(self, message: str | None, type: str | None, code: str | None) -> None:
        self.message, self.type, self.code = message, type, code


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _error_details(body: bytes, content_type: str) -> _ErrorDetails:
    """The server's own words from an error body, whatever envelope it uses."""
    if not body.strip():
        return _ErrorDetails("(empty body)", None, None)
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        title = _TITLE.search(body)
        text = _text(title.group(1)) if title else _TAGS.sub(" ", _text(body))
        return _ErrorDetails(f"an HTML page: {_snippet(' '.join(text.split()))}", None, None)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json recurses
        return _ErrorDetails(_snippet(_text(body).strip(), 200), None, None)
    if not isinstance(parsed, dict):
        return _ErrorDetails(_snippet(_text(body).strip(), 200), None, None)
    error = parsed.get("error", parsed)
    if isinstance(error, str):  # Ollama
        return _ErrorDetails(error, None, None)
    if not isinstance(error, dict):
        return _ErrorDetails(_snippet(_text(body).strip(), 200), None, None)
    message = error.get("message") or parsed.get("message") or parsed.get("detail")
    kind = error.get("type") or error.get("status")  # OpenAI and Anthropic; Google
    code = error.get("code")
    return _ErrorDetails(
        message if isinstance(message, str) else _snippet(_text(body).strip(), 200),
        kind if isinstance(kind, str) else None,
        None if code is None else str(code),
    )


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from retry-after-ms or retry-after (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _should_retry(error: HTTPStatusError, headers: httpx.Headers) -> bool:
    hint = headers.get("x-should-retry", "").lower()
    if hint in ("true", "false"):
        return hint == "true"
    if error.error_code == "insufficient_quota":
        return False  # billing, not load: waiting will not help
    return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    try:
        async with aclosing(response.aiter_bytes()) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) >= limit:
                    break
    except httpx.TransportError:
        pass  # an error body cut short still says something
    return bytes(body[:limit])


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


@cache
def _ssl_context() -> ssl.SSLContext:
    # Loading CA certificates costs milliseconds; share one context across clients.
    return ssl.create_default_context()


def normalize_messages(
    prompt_or_messages: str | list[Message], system: str | None = None
) -> list[Message]:
    if isinstance(prompt_or_messages, str):
        messages: list[Message] = [{"role": "user", "content": prompt_or_messages}]
    else:
        messages = [dict(message) for message in prompt_or_messages]
    if system and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def stream(
    prompt_or_messages: str | list[Message],
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    system: str | None = None,
    raw: bool = False,
    max_retries: int = 2,
    stall_timeout: float = 60.0,
    record: bool | None = None,
    replay: bool | Literal["fallback"] | None = None,
    replay_speed: float | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    **params: Any,
) -> Stream:
    """Stream an answer: ``async for event in ipyllm.stream("Hi")``.

    ``provider`` is one of ``openai``, ``openai-completions``, ``openai-responses``,
    ``anthropic``, ``ollama``, ``gemini`` or ``demo``; left out, it follows the
    environment (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``) and
    falls back to the offline demo model. Other keyword arguments (``temperature``,
    ``max_tokens``, ``top_p``, ``stop``, ``seed``...) go into the request.

    ``record=True`` keeps the exchange (raw bytes with arrival times, no secrets) in
    ``store`` (a SQLite file, ``.ipyllm/store.sqlite3`` by default); ``replay=True``
    serves a recorded exchange for the same provider, model, messages and parameters
    instead of calling the model (``"fallback"``: call it when there is none), at once
    (``replay_speed=0``), at the recorded pace (1) or N times faster (N). Left out,
    they come from ``IPYLLM_RECORD``, ``IPYLLM_REPLAY``, ``IPYLLM_REPLAY_SPEED`` and
    ``IPYLLM_STORE``, so a notebook can be re-run from its recordings unchanged.
    Configuration errors raise :class:`ipyllm.ConfigurationError` here, at once.
    """
    replay = _env_choice("IPYLLM_REPLAY") if replay is None else replay
    record = bool(_env_choice("IPYLLM_RECORD")) if record is None else record
    if replay_speed is None:
        replay_speed = float(os.environ.get("IPYLLM_REPLAY_SPEED") or 0)
    # A replayed answer needs no key: look for the recording before asking for one.
    target = resolve(provider, model, base_url, api_key, require_key=not replay)
    messages = normalize_messages(prompt_or_messages, system)
    options: dict[str, Any] = {
        "raw": raw,
        "max_retries": max_retries,
        "stall_timeout": stall_timeout,
    }
    if replay or record:
        store = store if isinstance(store, Store) else Store(store)
        key = request_key(target.provider, target.model, messages, params)
    if replay:
        recording = store.find_recording(key)
        if recording is not None:
            return Stream(
                target,
                messages,
                params,
                transport=ReplayTransport(recording, replay_speed),
                **options,
            )
        if replay != "fallback":
            raise ReplayMissError(
                f"no recording of this request ({target.provider}, {target.model}) in "
                f"{store.path}; record it first (record=True, %config Chat.record = True or "
                "IPYLLM_RECORD=1), or use replay='fallback' to call the model when none is found"
            )
        target = resolve(provider, model, base_url, api_key)  # live after all: a key is needed
    recorder = None
    if record:
        spec = target.dialect.build_request(
            messages, model=target.model, params=params, api_key=None, base_url=target.base_url
        )
        request = {"method": spec.method, "url": _public_url(spec.url), "body": spec.json}
        recorder = Recorder(store, key, request)
    return Stream(target, messages, params, recorder=recorder, **options)


def _env_choice(name: str) -> bool | Literal["fallback"]:
    value = os.environ.get(name, "").strip().lower()
    if value == "fallback":
        return "fallback"
    return value in ("1", "true", "yes", "on")


def _public_url(url: str) -> str:
    """A URL without credentials or query string, fit to be stored."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None, query=None))


async def achat(prompt_or_messages: str | list[Message], **kwargs: Any) -> Transcript:
    """Stream an answer to the end and return its :class:`Transcript`.

    Takes the same arguments as :func:`stream`. Raises a :class:`ipyllm.StreamError`
    subclass on failure; its ``transcript`` keeps everything received.
    """
    answer = stream(prompt_or_messages, **kwargs)
    async for _ in answer:
        pass
    return answer.transcript


async def list_models(
    provider: str | None = None, base_url: str | None = None, api_key: str | None = None
) -> list[str]:
    """The model names a provider offers (also a quick check of the API key)."""
    target = resolve(provider, None, base_url, api_key)
    spec = target.dialect.models_request(api_key=target.api_key, base_url=target.base_url)
    transport = target.dialect.transport(target.base_url)
    async with httpx.AsyncClient(transport=transport, timeout=30, verify=_ssl_context()) as client:
        try:
            response = await client.send(
                client.build_request(spec.method, spec.url, headers=spec.headers), stream=True
            )
        except httpx.HTTPError as exc:
            raise ConnectError(
                f"could not reach {target.provider} at {_origin(spec.url)}: {_describe(exc)}"
            ) from None
        if not response.is_success:
            raise await status_error(target, response)
        body = await _read_some(response, 16 * 1024 * 1024)
        await response.aclose()
    try:
        return [name for name in target.dialect.model_names(json.loads(body)) if name]
    except (ValueError, RecursionError):
        raise ProtocolError(
            f"{target.provider} answered the model list with something that is not JSON: "
            f"{_snippet(_text(body))}"
        ) from None
