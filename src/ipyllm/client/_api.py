"""The client's public functions: ``stream``, ``achat`` and ``list_models``.

They resolve the options (arguments, then the environment, then defaults), choose
the transport (the network, a recording, or the in-process demo) and hand back a
:class:`Stream`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import httpx

from .._text import snippet
from ..dialects import Message, as_schema, has_images
from ..errors import ConfigurationError, ConnectError, ProtocolError, ReplayMissError
from ..options import resolve_options
from ..transcript import Transcript
from ._images import image_parts
from ._net import default_transport, describe, origin, read_some, ssl_context, text_of
from ._responses import status_error
from ._stream import Stream
from ._target import resolve


def normalize_messages(
    prompt_or_messages: str | list[Message],
    system: str | None = None,
    images: list[dict[str, Any]] | None = None,
) -> list[Message]:
    """A prompt or a list of messages as a list of messages, with the system prompt first
    and ``images`` (encoded parts) before the text of the last user message."""
    if isinstance(prompt_or_messages, str):
        messages: list[Message] = [{"role": "user", "content": prompt_or_messages}]
    else:
        messages = [dict(message) for message in prompt_or_messages]
    if system and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    if images:
        last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if last is None:
            raise ConfigurationError("images go with a user message, and there is none")
        content = last.get("content")
        text = [{"type": "text", "text": content}] if isinstance(content, str) else content
        # Images first, then the text: the order the providers recommend.
        last["content"] = [*images, *(text or [])]
    return messages


def stream(
    prompt_or_messages: str | list[Message],
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    params: dict[str, Any] | None = None,
    max_retries: int | None = None,
    stall_timeout: float | None = None,
    record: bool | None = None,
    replay: bool | Literal["fallback"] | None = None,
    replay_speed: float | None = None,
    prices: dict[str, Any] | None = None,
    store: Any = None,
    images: list[Any] | None = None,
    schema: Any = None,
    raw: bool = False,
    **extra_params: Any,
) -> Stream:
    """Stream an answer: ``async for event in ipyllm.stream("Hi")``.

    ``provider`` is one of ``openai``, ``openai-completions``, ``openai-responses``,
    ``anthropic``, ``ollama``, ``gemini`` or ``demo``; left out, it follows the
    environment (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``) and
    falls back to the offline demo model. Other keyword arguments (``top_p``,
    ``stop``, ``seed``...) go into the request, as do ``params``.

    ``record=True`` keeps the exchange (raw bytes with arrival times, no secrets) in
    ``store`` (a SQLite file, ``.ipyllm/store.sqlite3`` by default); ``replay=True``
    serves a recorded exchange for the same provider, model, messages and parameters
    instead of calling the model (``"fallback"``: call it when there is none), at once
    (``replay_speed=0``), at the recorded pace (1) or N times faster (N). Left out,
    they come from ``IPYLLM_RECORD``, ``IPYLLM_REPLAY``, ``IPYLLM_REPLAY_SPEED`` and
    ``IPYLLM_STORE``, so a notebook can be re-run from its recordings unchanged.
    ``images`` go with the prompt: file paths, bytes, matplotlib figures, PIL or IPython
    images (sent in each provider's own form; a model known to take text only is refused
    here). ``schema`` (a JSON Schema dict or a pydantic model class) asks for an answer
    that fits it: at the end ``transcript.parsed`` holds the value (the model's
    instance), or a :class:`ipyllm.StructuredOutputError` says what is wrong.
    ``raw=True`` also yields each wire event as a :class:`ipyllm.events.RawEvent`.
    Configuration errors raise :class:`ipyllm.ConfigurationError` here, at once.
    """
    options = resolve_options(
        {
            "provider": provider,
            "model": model,
            "base_url": base_url,
            "api_key": api_key,
            "system": system,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "params": {**(params or {}), **extra_params},
            "max_retries": max_retries,
            "stall_timeout": stall_timeout,
            "record": record,
            "replay": replay,
            "replay_speed": replay_speed,
            "prices": prices,
            "store": os.fspath(store) if isinstance(store, str | os.PathLike) else None,
            "images": images,
            "schema": schema,
        }
    )
    request_params = options.request_params()
    # A replayed answer needs no key: look for the recording before asking for one.
    target = resolve(
        options.provider,
        options.model,
        options.base_url,
        options.api_key,
        require_key=not options.replay,
    )
    the_schema = as_schema(options.schema)
    messages = normalize_messages(prompt_or_messages, options.system, image_parts(options.images))
    target.dialect.check(target.model, images=has_images(messages), schema=the_schema is not None)
    settings: dict[str, Any] = {
        "raw": raw,
        "prices": options.prices,
        "max_retries": options.max_retries,
        "stall_timeout": options.stall_timeout,
        "schema": the_schema,
    }
    if not (options.replay or options.record):
        return Stream(target, messages, request_params, **settings)

    # sqlite3 is loaded only by those who record or replay
    from ._replay import Recorder, ReplayTransport
    from .store import Store, request_key

    the_store = store if isinstance(store, Store) else Store(options.store)
    key = request_key(
        target.provider,
        target.model,
        messages,
        request_params,
        schema=None if the_schema is None else the_schema.json,
    )
    if options.replay:
        recording = the_store.find_recording(key)
        if recording is not None:
            transport = ReplayTransport(recording, options.replay_speed or 0.0)
            return Stream(target, messages, request_params, transport=transport, **settings)
        if options.replay != "fallback":
            raise ReplayMissError(
                f"no recording of this request ({target.provider}, {target.model}) in "
                f"{the_store.path}; record it first (record=True, %config Chat.record = True or "
                "IPYLLM_RECORD=1), or use replay='fallback' to call the model when none is found"
            )
        # live after all: a key is needed
        target = resolve(options.provider, options.model, options.base_url, options.api_key)
    recorder = None
    if options.record:
        spec = target.dialect.build_request(
            messages,
            model=target.model,
            params=request_params,
            api_key=None,
            base_url=target.base_url,
            schema=the_schema,
        )
        request = {"method": spec.method, "url": _public_url(spec.url), "body": spec.json}
        recorder = Recorder(the_store, key, request)
    return Stream(target, messages, request_params, recorder=recorder, **settings)


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
    transport = target.dialect.transport(target.base_url) or default_transport()
    async with httpx.AsyncClient(transport=transport, timeout=30, verify=ssl_context()) as client:
        try:
            response = await client.send(
                client.build_request(spec.method, spec.url, headers=spec.headers), stream=True
            )
        except httpx.HTTPError as exc:
            raise ConnectError(
                f"could not reach {target.provider} at {origin(spec.url)}: {describe(exc)}",
                provider=target.provider,
            ) from None
        if not response.is_success:
            raise await status_error(target, response)
        body = await read_some(response, 16 * 1024 * 1024)
        await response.aclose()
    try:
        return [name for name in target.dialect.model_names(json.loads(body)) if name]
    except (ValueError, RecursionError):
        raise ProtocolError(
            f"{target.provider} answered the model list with something that is not JSON: "
            f"{snippet(text_of(body))}",
            provider=target.provider,
        ) from None
