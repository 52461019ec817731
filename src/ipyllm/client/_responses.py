"""Reading what a server said when it did not send the stream asked for.

An error status, a JSON error document, an HTML page from a proxy, or an error
inside the stream: each becomes one typed error with the server's own words, the
key redacted, and the transcript attached where it is raised.
"""

from __future__ import annotations

import json
import re
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx

from .._redact import redact
from .._text import snippet
from ..errors import AuthenticationError, HTTPStatusError, ProviderError, RateLimitError
from ..events import ErrorEvent
from ..transcript import Transcript
from ._net import body_chunks, read_some, text_of
from ._retry import retry_after
from ._target import Target

ERROR_BODY_LIMIT = 64 * 1024
ANSWER_BODY_LIMIT = 16 * 1024 * 1024  # a whole JSON answer where a stream was asked for
# An empty body, or an answer that ends with nothing in it: what llama.cpp and LiteLLM
# send when the prompt does not fit the model's context.
EARLY_FAILURE_HINT = (
    "the server may have failed before its first token, for example a prompt longer "
    "than its context window; check the server's log."
)

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SAYS_RETRY = re.compile(r"\b(try again|retry)\b", re.IGNORECASE)


@dataclass(slots=True)
class ErrorDetails:
    """The message, type and code a server gave, whatever envelope it used."""

    message: str | None
    type: str | None = None
    code: str | None = None


def error_details(body: bytes, content_type: str) -> ErrorDetails:
    """The server's own words from an error body: OpenAI, Anthropic, Google, Ollama or HTML."""
    if not body.strip():
        return ErrorDetails("(empty body)")
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        title = _TITLE.search(body)
        text = text_of(title.group(1)) if title else _TAGS.sub(" ", text_of(body))
        return ErrorDetails(f"an HTML page: {snippet(' '.join(text.split()))}")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json recurses
        return ErrorDetails(snippet(text_of(body).strip(), 200))
    if not isinstance(parsed, dict):
        return ErrorDetails(snippet(text_of(body).strip(), 200))
    error = parsed.get("error", parsed)
    if isinstance(error, str):  # Ollama
        return ErrorDetails(error)
    if not isinstance(error, dict):
        return ErrorDetails(snippet(text_of(body).strip(), 200))
    message = error.get("message") or parsed.get("message") or parsed.get("detail")
    kind = error.get("type") or error.get("status")  # OpenAI and Anthropic; Google
    code = error.get("code")
    return ErrorDetails(
        message if isinstance(message, str) else snippet(text_of(body).strip(), 200),
        kind if isinstance(kind, str) else None,
        None if code is None else str(code),
    )


async def read_whole(response: httpx.Response, limit: int) -> bytes | None:
    """The whole body, or None past ``limit`` bytes; a broken connection raises httpx's error."""
    body = bytearray()
    async with aclosing(body_chunks(response)) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
                return None
    return bytes(body)


def is_error_document(parsed: Any) -> bool:
    """A JSON body that reports an error (OpenAI, Anthropic, Google, Ollama, vLLM, FastAPI)."""
    if not isinstance(parsed, dict):
        return False
    return bool(
        parsed.get("error")
        or parsed.get("type") == "error"
        or parsed.get("object") == "error"
        or isinstance(parsed.get("message"), str)
        or "detail" in parsed
    )


async def status_error(
    target: Target, response: httpx.Response, transcript: Transcript | None = None
) -> HTTPStatusError:
    """A typed error with the server's own words, from an error response (which it closes)."""
    body = await read_some(response, ERROR_BODY_LIMIT)
    await response.aclose()
    provider, status, name = target.provider, response.status_code, server_name(target)
    details = error_details(body, response.headers.get("content-type", ""))
    server_message = redact(details.message, target.api_key) if details.message else None
    wait = retry_after(response.headers)
    said = f": {server_message.rstrip('.')}." if server_message else "."
    heading = f"HTTP {status}" + (f" {response.reason_phrase}" if response.reason_phrase else "")
    error_class: type[HTTPStatusError] = HTTPStatusError
    if status in (401, 403):
        error_class = AuthenticationError
        # Neutral: where to set the key depends on where the request came from (the magic
        # adds its own advice when it shows this error).
        env = target.dialect.api_key_env
        hint = f" Check the API key ({env})." if env else " Check the API key."
        message = f"{name} refused the request ({heading}){said}{hint}"
    elif status == 429:
        error_class = RateLimitError
        if wait is not None:
            when = f" Retry after {wait:g} s."
        elif server_message and _SAYS_RETRY.search(server_message):
            when = ""  # the server said when, in its own words: not twice
        else:
            when = " Try again later."
        message = f"{name} is rate limiting requests ({heading}){said}{when}"
    else:
        message = f"{name} answered {heading}{said}"
    return error_class(
        message,
        status_code=status,
        server_message=server_message,
        error_type=details.type,
        error_code=details.code,
        retry_after=wait,
        provider=provider,
        transcript=transcript,
    )


def server_name(target: Target) -> str:
    """How a message names the server: the address chosen (a local server, a proxy, the
    teaching server), or the provider when it is the provider's own service."""
    return f"the server at {target.endpoint}" if target.endpoint else target.provider


def provider_error(
    provider: str,
    event: ErrorEvent,
    transcript: Transcript | None,
    *,
    mid_stream: bool,
    name: str | None = None,
) -> ProviderError:
    """The one message for an error a server reported, in a stream or as its whole answer.
    ``name`` names the server in the message (default: the provider)."""
    kind = f" ({event.type})" if event.type else ""
    where = " mid-stream" if mid_stream else ""
    return ProviderError(
        f"{name or provider} reported an error{where}{kind}: {event.message}",
        error_type=event.type,
        error_code=event.code,
        provider=provider,
        transcript=transcript,
    )
