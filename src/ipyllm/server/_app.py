"""The teaching app: routes, the demo model behind every provider format, faults, and a log.

Pure asyncio with no sockets: ``handle()`` turns one request into a :class:`Response`
whose body is a paced async iterator. The socket server (``_http``) and the in-process
httpx transport (``_transport``) both drive it, so both put the same bytes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ipyllm.server._anthropic import AnthropicMessages
from ipyllm.server._demo import demo_answer, demo_reasoning, demo_tokens
from ipyllm.server._errors import CAPTIVE_PORTAL_PAGE, reason_phrase, unknown_route_body
from ipyllm.server._formats import Dialect, Event, Generation, Prompt, RequestError
from ipyllm.server._gemini import Gemini
from ipyllm.server._help import HELP_TEXT
from ipyllm.server._media import images_line
from ipyllm.server._ollama import OllamaChat, OllamaGenerate
from ipyllm.server._openai import ChatCompletions, LegacyCompletions, Responses
from ipyllm.server._options import OptionError, RequestOptions, parse_options, split_target
from ipyllm.server._responses import (
    DropConnection,
    LoggedBody,
    Response,
    bytes_response,
    error_response,
    json_response,
    once,
    parse_raw_http,
    reshaped,
    status_response,
    text_response,
)
from ipyllm.server._routes import model_list, redacted
from ipyllm.server._schema_answer import example_for, stable_seed

LogRecord = dict[str, Any]

_DIALECTS: dict[str, type[Dialect]] = {
    "/v1/chat/completions": ChatCompletions,
    "/v1/completions": LegacyCompletions,
    "/v1/responses": Responses,
    "/v1/messages": AnthropicMessages,
    "/api/chat": OllamaChat,
    "/api/generate": OllamaGenerate,
}
_GEMINI_PATH = re.compile(
    r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<action>streamGenerateContent|generateContent)"
)
_GEMINI_ACTION = re.compile(r"/models/[^/:]+:")  # Gemini's models/NAME:action paths
_MODEL_LISTS = {"/v1/models": "openai", "/api/tags": "ollama"}
_FIXTURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.(sse|ndjson|http)")
_FIXTURE_TYPES = {"sse": "text/event-stream", "ndjson": "application/x-ndjson"}


class _Failure(Exception):
    """Answer the request with this provider-shaped error instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TeachingApp:
    """Answers OpenAI, Anthropic, Ollama and Gemini requests with the demo model.

    ``token_rate`` is in tokens per second (0 or ``inf``: no pacing) and
    ``first_token_latency`` in seconds. ``on_log`` is called with each log record,
    from whichever thread serves the request. With ``keep_bodies`` the request bodies
    are kept too (never headers), for tests and class: :attr:`bodies`, :attr:`last_body`.
    """

    def __init__(
        self,
        fixtures_dir: str | Path | None = None,
        token_rate: float = 40.0,
        first_token_latency: float = 0.3,
        on_log: Callable[[LogRecord], None] | None = None,
        keep_bodies: bool = False,
    ) -> None:
        self.fixtures_dir = Path(fixtures_dir).resolve() if fixtures_dir is not None else None
        self.token_rate = token_rate
        self.first_token_latency = first_token_latency
        self.on_log = on_log
        self.keep_bodies = keep_bodies
        self._bodies: list[dict[str, Any]] = []
        self._records: list[LogRecord] = []
        self._changed = threading.Condition()
        self._requests = 0
        self._uses: Counter[str] = Counter()  # requests seen per option string, for times=

    # -- the log -------------------------------------------------------------------------

    @property
    def log(self) -> list[LogRecord]:
        with self._changed:
            return [dict(record) for record in self._records]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Kept requests (``keep_bodies``): ``{"id", "path", "body"}``, the body as parsed JSON
        (its text when it is not JSON), oldest first."""
        with self._changed:
            return list(self._bodies)

    @property
    def last_body(self) -> Any:
        """The body of the last request kept (``keep_bodies``), as parsed JSON; None if none."""
        with self._changed:
            return self._bodies[-1]["body"] if self._bodies else None

    def wait_for(
        self, predicate: Callable[[LogRecord], bool], timeout: float = 5.0
    ) -> LogRecord | None:
        """Block until a log record matches (earlier records count), or None on timeout.

        Safe from any thread, but it blocks: from the loop that runs the app, call it
        through ``asyncio.to_thread``.
        """
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                for record in self._records[checked:]:
                    if predicate(record):
                        return dict(record)
                checked = len(self._records)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def _record(self, event: str, request: dict[str, Any], status: int, sent: int) -> None:
        record = {"time": time.time(), "event": event, **request, "status": status, "bytes": sent}
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()
        if self.on_log is not None:
            self.on_log(dict(record))

    # -- requests ------------------------------------------------------------------------

    async def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        peer: str = "",
    ) -> Response:
        """Answer one request. ``headers`` are never logged (they carry API keys)."""
        with self._changed:
            self._requests += 1
            number = self._requests
        request = {"id": number, "method": method, "path": redacted(target), "peer": peer}
        if self.keep_bodies:
            try:
                kept: Any = json.loads(body) if body else None
            except (UnicodeDecodeError, ValueError):
                kept = body.decode("utf-8", "replace")
            with self._changed:
                self._bodies.append({"id": number, "path": request["path"], "body": kept})
        response = self._respond(number, method.upper(), target, body)
        self._record("request", request, response.status, 0)

        def finish(event: str, sent: int) -> None:
            self._record(event, request, response.status, sent)

        response.body = LoggedBody(response.body, finish)
        return response

    def _respond(self, number: int, method: str, target: str, body: bytes) -> Response:
        path, _, query = target.partition("?")
        raw_options, route = split_target(path)
        if route == "/" and not raw_options:
            if method != "GET":
                return text_response(405, "Use GET / for help.\n")
            return text_response(200, HELP_TEXT)
        gemini = _GEMINI_PATH.fullmatch(route)
        family = _family_of(route, gemini is not None)
        envelope = family or _owner_of(route)
        try:
            options = self._options_for(raw_options)
            # Faults answer on any path: a replay works whatever a client appends to its base URL.
            faulted = self._fault_response(envelope, options)
            if faulted is not None:
                return faulted
            if family is None:
                message = f"Unknown route {method} {route}. Read GET / for the routes."
                return json_response(404, unknown_route_body(envelope, message))
            expected = "GET" if route in _MODEL_LISTS else "POST"
            if method != expected:
                raise _Failure(405, f"Use {expected} for {route}.")
            if route in _MODEL_LISTS:
                return reshaped(json_response(200, model_list(family)), options)
            if gemini:
                dialect_type: type[Dialect] = Gemini
                prompt = _gemini_prompt(body, gemini["model"], gemini["action"], query)
            else:
                dialect_type = _DIALECTS[route]
                prompt = dialect_type.parse(_json_object(body))
            if options.error_style and options.error_style not in dialect_type.error_styles:
                raise RequestError(
                    f"error_style={options.error_style} is for OpenAI-compatible chat and "
                    "completion routes"
                )
        except (OptionError, RequestError) as exc:
            return error_response(envelope, 400, str(exc))
        except _Failure as exc:
            return error_response(envelope, exc.status, exc.message)
        dialect = dialect_type(self._generate(number, prompt, dialect_type.reasoning, options))
        if options.empty:
            content_type = dialect.content_type if prompt.stream else "application/json"
            return reshaped(bytes_response(200, b"", content_type), options)
        if not prompt.stream or options.whole:  # whole=1: a server that ignores "stream"
            return reshaped(json_response(200, dialect.whole()), options)
        headers = [("content-type", dialect.content_type), ("cache-control", "no-cache")]
        body_pieces = self._stream(dialect, options)
        return reshaped(Response(200, reason_phrase(200), headers, body_pieces), options)

    def _options_for(self, raw: str) -> RequestOptions:
        options = parse_options(raw)
        if options.times is None:
            return options
        with self._changed:
            self._uses[raw] += 1
            seen = self._uses[raw]
        return options if seen <= options.times else options.without_faults()

    def _fault_response(self, family: str, options: RequestOptions) -> Response | None:
        """The responses that replace the whole answer: status, html, replay."""
        if options.status is not None:
            return reshaped(status_response(family, options.status, options), options)
        if options.html:
            return reshaped(
                bytes_response(200, CAPTIVE_PORTAL_PAGE, "text/html; charset=utf-8"), options
            )
        if options.replay is not None:
            return reshaped(self._replay(options.replay), options)
        return None

    def _replay(self, name: str) -> Response:
        if "/" in name or "\\" in name or ".." in name or not _FIXTURE_NAME.fullmatch(name):
            raise _Failure(
                400,
                f"replay={name!r} is not a fixture file name (*.sse, *.ndjson, "
                "*.http, no directories)",
            )
        if self.fixtures_dir is None:
            raise _Failure(400, "replay needs a fixtures directory (start with --fixtures DIR)")
        file = self.fixtures_dir / name
        if file.resolve().parent != self.fixtures_dir or not file.is_file():
            raise _Failure(404, f"no fixture named {name!r}")
        data = file.read_bytes()
        suffix = file.suffix[1:]
        if suffix in _FIXTURE_TYPES:
            return Response(200, "OK", [("content-type", _FIXTURE_TYPES[suffix])], once(data))
        return parse_raw_http(data)

    def _generate(
        self, number: int, prompt: Prompt, can_reason: bool, options: RequestOptions
    ) -> Generation:
        if prompt.schema is not None:  # a structured answer: JSON that fits the schema
            seed = stable_seed(prompt.messages)
            text = json.dumps(example_for(prompt.schema, seed), ensure_ascii=False)
        else:
            text = images_line(prompt.images) + demo_answer(prompt.messages, words=options.words)
        answer = demo_tokens(text)
        limit = prompt.max_tokens
        truncated = limit is not None and limit < len(answer)
        reasoning = "reasoning" in prompt.model and can_reason and prompt.tool is None
        return Generation(
            model=prompt.model,
            number=number,
            prompt_tokens=sum(len(demo_tokens(m["content"])) for m in prompt.messages),
            answer=answer[:limit] if truncated else answer,
            reasoning=demo_tokens(demo_reasoning(prompt.messages)) if reasoning else [],
            truncated=truncated,
            include_usage=prompt.include_usage,
            tool=prompt.tool,
        )

    async def _stream(
        self, dialect: Dialect, options: RequestOptions
    ) -> AsyncGenerator[bytes, None]:
        rate = self.token_rate if options.rate is None else options.rate
        latency = self.first_token_latency if options.latency is None else options.latency
        pacer = _Pacer(latency, rate)
        for step in _with_faults(dialect.events(), options):
            match step:
                case Event(data=data, is_token=is_token):
                    if is_token:
                        await pacer.wait()
                    yield data
                case "stall":
                    await asyncio.sleep(options.stall)
                    pacer.resume()
                case "malformed":
                    yield dialect.malformed_event()
                case "error":
                    for data in dialect.error_events(options.error_style):
                        yield data
                    return
                case "drop":
                    raise DropConnection
        if options.after_end is not None:  # a proxy's [DONE], or junk, after the end event
            yield b"data: [DONE]\n\n" if options.after_end == "done" else dialect.malformed_event()


def _with_faults(events: Iterator[Event], options: RequestOptions) -> Iterator[Event | str]:
    """Interleave the requested faults at their token counts into the event stream."""
    faults = [
        ("stall", options.stall_after),
        ("malformed", options.malformed_after),
        ("error", options.error_after),
        ("drop", options.drop_after),
    ]
    sent = 0
    for event in events:
        if event.is_token and sent == 0:
            yield from (name for name, after in faults if after == 0)
        yield event
        if event.is_token:
            sent += 1
            yield from (name for name, after in faults if after == sent)


class _Pacer:
    """First token after ``latency``, then ``rate`` tokens per second, without drift."""

    def __init__(self, latency: float, rate: float) -> None:
        self.latency = latency
        self.interval = 0.0 if rate == 0 or math.isinf(rate) else 1.0 / rate
        self.due: float | None = None

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.due is None:
            self.due = now + self.latency
        else:
            # Never burst to catch up when we fell behind (a stall, a slow reader).
            self.due = max(self.due + self.interval, now)
        # Sleep even for 0 s: other streams on the loop get their turn between tokens.
        await asyncio.sleep(max(0.0, self.due - now))

    def resume(self) -> None:
        self.due = None if self.due is None else asyncio.get_running_loop().time()


def _family_of(route: str, is_gemini: bool) -> str | None:
    """Whose error envelope a route uses; None for unknown routes."""
    if route in _DIALECTS:
        return _DIALECTS[route].family
    return "gemini" if is_gemini else _MODEL_LISTS.get(route)


def _owner_of(route: str) -> str:
    """Whose error envelope an unknown route gets: the provider its path belongs to."""
    if route == "/api" or route.startswith("/api/"):
        return "ollama"
    if route.startswith(("/v1beta/", "/v1alpha/")) or _GEMINI_ACTION.search(route):
        return "gemini"
    if route.startswith("/v1/messages/") or route == "/v1/complete":
        return "anthropic"
    return "openai"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object")
    return payload


def _gemini_prompt(body: bytes, model: str, action: str, query: str) -> Prompt:
    prompt = Gemini.parse(_json_object(body))
    streaming = action == "streamGenerateContent"
    if streaming and dict(parse_qsl(query)).get("alt") != "sse":
        raise RequestError("this teaching server streams Gemini only as SSE: add ?alt=sse")
    return replace(prompt, model=model, stream=streaming)
