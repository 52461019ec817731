"""Google's Gemini API: streamGenerateContent?alt=sse, each event a whole response object."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageUpdate,
)
from ._base import (
    Dialect,
    Message,
    Parser,
    RequestSpec,
    WireEvent,
    as_dict,
    as_int,
    as_list,
    as_str,
    error_event,
    join_url,
    split_system,
)
from ._content import gemini_parts
from ._schema import openapi_form

if TYPE_CHECKING:
    from ._schema import Schema

_CONFIG_NAMES = {
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
    "temperature": "temperature",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

# Models older than Gemini 2.5 take a schema only as responseSchema, an OpenAPI subset.
_OPENAPI_SCHEMA_MODELS = ("gemini-1", "gemini-2.0", "gemini-pro", "models/gemini-1")


class GeminiParser(Parser):
    provider = "gemini"

    def __init__(self) -> None:
        super().__init__()
        self._tool_calls = 0

    def parse(self, event: WireEvent) -> list[Event]:
        return self._chunk(self.load(event))

    def parse_answer(self, answer: Any) -> list[Event] | None:
        # generateContent answers one response object; streamGenerateContent without
        # ?alt=sse answers a JSON array of them (the stream's chunks, errors included).
        chunks = answer if type(answer) is list else [answer]
        keys = ("candidates", "promptFeedback", "usageMetadata")
        if not chunks or not all(
            type(chunk) is dict and (any(key in chunk for key in keys) or type(answer) is list)
            for chunk in chunks
        ):
            return None  # {"error": {...}} alone, or not an answer at all
        return [event for chunk in chunks for event in self._chunk(chunk)]

    def _chunk(self, chunk: dict[str, Any]) -> list[Event]:
        if chunk.get("error"):
            return [error_event(chunk["error"], type_key="status")]
        events: list[Event] = []
        candidates = as_list(chunk.get("candidates"))
        candidate = as_dict(candidates[0]) if candidates else {}
        for part in as_list(as_dict(candidate.get("content")).get("parts")):
            events += self._part(as_dict(part))
        finish = candidate.get("finishReason") or as_dict(chunk.get("promptFeedback")).get(
            "blockReason"
        )
        if isinstance(finish, str) and finish:
            # Gemini has no end marker: the chunk with the finish reason (and the final usage)
            # is the last one, so whatever follows it is not part of the answer.
            self.terminated = True
            events.append(Finish(finish))
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict) and usage:
            # Cumulative on every chunk: the last one is the answer's.
            answer = as_int(usage.get("candidatesTokenCount"))
            thoughts = as_int(usage.get("thoughtsTokenCount"))
            output = (
                None if answer is None and thoughts is None else (answer or 0) + (thoughts or 0)
            )
            events.append(
                UsageUpdate(
                    usage,
                    as_int(usage.get("promptTokenCount")),
                    output,
                    as_int(usage.get("totalTokenCount")),
                )
            )
        return events

    def _part(self, part: dict[str, Any]) -> list[Event]:
        text = as_str(part.get("text"))
        if text:
            return [ReasoningDelta(text) if part.get("thought") is True else TextDelta(text)]
        call = part.get("functionCall")
        if isinstance(call, dict):
            index, self._tool_calls = self._tool_calls, self._tool_calls + 1
            arguments = json.dumps(call.get("args") or {}, ensure_ascii=False)
            return [
                ToolCallDelta(
                    index=index,
                    id=as_str(call.get("id")) or None,
                    name=as_str(call.get("name")) or None,
                    arguments=arguments,
                )
            ]
        return []


class Gemini(Dialect):
    name = "gemini"
    api_key_env = "GEMINI_API_KEY"
    base_url_env = "GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    default_model = "gemini-2.5-flash"
    parser_class = GeminiParser

    @staticmethod
    def _headers(api_key: str | None) -> dict[str, str]:
        # The key goes in a header, never in the URL, so it cannot leak into logs.
        return {"x-goog-api-key": api_key} if api_key else {}

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
        system, conversation = split_system(messages)
        contents = [
            {
                "role": "model" if m.get("role") == "assistant" else "user",
                "parts": gemini_parts(m.get("content")),
            }
            for m in conversation
        ]
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        streamed = params.get("stream", True) is not False
        for key, value in params.items():
            if key == "stream":
                continue  # not a field of Gemini's: the method says it (below)
            if key in _CONFIG_NAMES:
                if key == "stop" and isinstance(value, str):
                    value = [value]
                config[_CONFIG_NAMES[key]] = value
            else:
                body[key] = value  # generationConfig, safetySettings, tools...
        if schema is not None:
            config["responseMimeType"] = "application/json"
            if model.startswith(_OPENAPI_SCHEMA_MODELS):
                config["responseSchema"] = openapi_form(schema.json)
            else:  # Gemini 2.5 and later take the JSON Schema as it is
                config["responseJsonSchema"] = schema.json
        if config:
            body["generationConfig"] = {**config, **as_dict(body.get("generationConfig"))}
        method = "streamGenerateContent?alt=sse" if streamed else "generateContent"
        url = join_url(base_url, f"models/{model}:{method}")
        return RequestSpec("POST", url, self._headers(api_key), body)

    def models_request(self, *, api_key: str | None, base_url: str) -> RequestSpec:
        return RequestSpec("GET", join_url(base_url, "models"), self._headers(api_key))

    def model_names(self, body: Any) -> list[str]:
        names = [as_str(as_dict(m).get("name")) for m in as_list(as_dict(body).get("models"))]
        return [name.removeprefix("models/") for name in names]
