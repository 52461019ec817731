"""What every provider dialect provides, and small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import httpx

from .._json import loads
from .._text import snippet
from ..errors import ConfigurationError, ProtocolError
from ..events import ErrorEvent, Event
from ._content import check_images

if TYPE_CHECKING:
    from ._schema import Schema

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """An HTTP request, ready to send."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None


class WireEvent(Protocol):
    """One framed unit of a stream: an SSE event, or an NDJSON line (``event`` "message")."""

    @property
    def data(self) -> str: ...

    @property
    def event(self) -> str: ...


class Parser:
    """Maps one stream's wire events to normalized events; one instance per stream.

    ``terminated`` turns true when the dialect's own end marker arrives
    (``[DONE]``, ``message_stop``, ``response.completed``, ``done: true``, Gemini's
    chunk with a finish reason); the client reads nothing after it.
    """

    provider: ClassVar[str] = ""

    def __init__(self) -> None:
        self.terminated = False
        self.model: str | None = None
        """The model the server says answered (its ``model`` field), once one said it."""

    def parse(self, event: WireEvent) -> list[Event]:
        raise NotImplementedError

    def parse_answer(self, answer: Any) -> list[Event] | None:
        """A whole, non-streamed answer (from a server that ignored ``"stream": true``).

        ``answer`` is the parsed JSON body. The events are the ones its stream would
        have given (text, reasoning, tool calls, finish reason, usage, a reported
        error). None when it does not have the shape of this provider's answers (an
        error document, say): the client then reports it as the server's error.
        """
        return None

    def load(self, event: WireEvent) -> dict[str, Any]:
        """The event's data as a JSON object, or a clear ProtocolError."""
        try:
            obj = loads(event.data)
        except ValueError:
            raise ProtocolError(
                f"{self.provider} sent malformed JSON in a stream event: {snippet(event.data)}"
            ) from None
        if not isinstance(obj, dict):
            raise ProtocolError(
                f"{self.provider} sent a stream event that is not a JSON object: "
                f"{snippet(event.data)}"
            )
        if self.model is None:
            self.model = reported_model(obj)
        return obj


def reported_model(obj: dict[str, Any]) -> str | None:
    """The model a stream event names: OpenAI-style chunks and Ollama lines at the top,
    Gemini's ``modelVersion``, Anthropic's ``message_start``, Responses' ``response``."""
    for holder in (obj, obj.get("message"), obj.get("response")):
        if type(holder) is dict:
            name = holder.get("model") or holder.get("modelVersion")
            if type(name) is str and name:
                return name
    return None


class Dialect:
    """How to talk to one kind of server: the request it wants and the stream it sends."""

    name: ClassVar[str]
    framing: ClassVar[Literal["sse", "ndjson"]] = "sse"
    # An SSE line "error: ..." reaches the parser as an event named "error" (llama.cpp).
    error_field: ClassVar[bool] = False
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    parser_class: ClassVar[type[Parser]]
    takes_images: ClassVar[bool] = True
    """Whether the API takes images in messages (see ``_content`` for each one's form)."""
    takes_schema: ClassVar[bool] = True
    """Whether the API can be asked for an answer that fits a JSON Schema."""

    def build_request(
        self,
        messages: list[Message],
        *,
        model: str,
        params: dict[str, Any],
        api_key: str | None,
        base_url: str,
        schema: Schema | None = None,
    ) -> RequestSpec:
        """The request; ``messages`` in the neutral form of ``_content`` (images as
        ``image_url`` parts), ``schema`` the structured answer asked for, if any."""
        raise NotImplementedError

    def check(self, model: str, *, images: bool = False, schema: bool = False) -> None:
        """Refuse, before anything is sent, what this API or model cannot take."""
        if images and not self.takes_images:
            raise ConfigurationError(
                f"the {self.name} API takes text only: it cannot be sent images "
                "(-p openai, openai-responses, anthropic, gemini or ollama can)"
            )
        if images:
            check_images(model)
        if schema and not self.takes_schema:
            raise ConfigurationError(
                f"the {self.name} API cannot be asked for an answer that fits a schema"
            )

    def models_request(self, *, api_key: str | None, base_url: str) -> RequestSpec:
        raise NotImplementedError

    def model_names(self, body: Any) -> list[str]:
        """The model ids in the answer to :meth:`models_request`."""
        raise NotImplementedError

    def new_parser(self, schema: Schema | None = None) -> Parser:
        """A parser for one stream (``schema``: the structured answer asked for, if any)."""
        return self.parser_class()

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        """A transport of its own (the demo answers in-process), or None for the network."""
        return None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one: wire data is never trusted to be shaped."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def error_event(error: Any, type_key: str = "type") -> ErrorEvent:
    """An error as a provider reports it: a string, or an object with a message.

    ``type_key`` names the field that classifies it ("type" for OpenAI and Anthropic,
    "status" for Google).
    """
    if isinstance(error, str):
        return ErrorEvent(message=error or "the server reported an error")
    error = as_dict(error)
    code = error.get("code")
    return ErrorEvent(
        message=as_str(error.get("message")) or "the server reported an error",
        type=as_str(error.get(type_key)) or None,
        code=None if code is None else str(code),
        raw=error,
    )


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    parts = [as_str(as_dict(part).get("text")) for part in as_list(content)]
    return "".join(parts)


def split_system(messages: list[Message]) -> tuple[str | None, list[Message]]:
    """Separate system messages (joined) from the conversation, for APIs that want them apart."""
    system = [text_of(m.get("content")) for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    return ("\n\n".join(system) if system else None), rest


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")
