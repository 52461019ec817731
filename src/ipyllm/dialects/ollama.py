"""Ollama's native API: NDJSON lines from /api/chat (message.content) or /api/generate."""

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
)
from ._content import to_ollama

if TYPE_CHECKING:
    from ._schema import Schema

# Request parameters that Ollama takes inside "options", with their OpenAI-style names.
_OPTION_NAMES = {"max_tokens": "num_predict"}
_OPTIONS = {
    "temperature", "top_p", "top_k", "seed", "stop", "num_predict", "num_ctx",
    "repeat_penalty", "presence_penalty", "frequency_penalty", "min_p",
}  # fmt: skip
_USAGE_KEYS = (
    "prompt_eval_count", "eval_count", "total_duration", "load_duration",
    "prompt_eval_duration", "eval_duration",
)  # fmt: skip


class OllamaParser(Parser):
    provider = "ollama"

    def __init__(self) -> None:
        super().__init__()
        self._tool_calls = 0

    def parse(self, event: WireEvent) -> list[Event]:
        return self._line(self.load(event))

    def parse_answer(self, answer: Any) -> list[Event] | None:
        # "stream": false answers the last line of a stream, whole ("done": true).
        if type(answer) is not dict or not ("message" in answer or "response" in answer):
            return None  # {"error": "..."}, or not an answer at all
        return self._line(answer)

    def _line(self, line: dict[str, Any]) -> list[Event]:
        if line.get("error"):
            return [error_event(line["error"])]
        events: list[Event] = []
        message = as_dict(line.get("message"))
        thinking = as_str(message.get("thinking")) or as_str(line.get("thinking"))
        if thinking:
            events.append(ReasoningDelta(thinking))
        text = as_str(message.get("content")) or as_str(line.get("response"))
        if text:
            events.append(TextDelta(text))
        for call in as_list(message.get("tool_calls")):
            events.append(self._tool_call(as_dict(call)))
        if line.get("done") is True:
            self.terminated = True
            events.append(Finish(as_str(line.get("done_reason")) or "stop"))
            usage = {key: line[key] for key in _USAGE_KEYS if key in line}
            if usage:
                prompt, output = (
                    as_int(usage.get("prompt_eval_count")),
                    as_int(usage.get("eval_count")),
                )
                total = prompt + output if prompt is not None and output is not None else None
                events.append(UsageUpdate(usage, prompt, output, total))
        return events

    def _tool_call(self, call: dict[str, Any]) -> ToolCallDelta:
        # Ollama sends each call whole, with arguments as an object: number them in order.
        function = as_dict(call.get("function"))
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        index, self._tool_calls = self._tool_calls, self._tool_calls + 1
        return ToolCallDelta(
            index=index,
            id=as_str(call.get("id")) or None,
            name=as_str(function.get("name")) or None,
            arguments=arguments,
        )


class Ollama(Dialect):
    name = "ollama"
    framing = "ndjson"
    base_url_env = "OLLAMA_HOST"
    default_base_url = "http://127.0.0.1:11434"
    default_model = "llama3.2"
    parser_class = OllamaParser

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
        body: dict[str, Any] = {"model": model, "messages": to_ollama(messages), "stream": True}
        if schema is not None:
            body["format"] = schema.json  # Ollama's structured outputs: the schema itself
        options: dict[str, Any] = {}
        for key, value in params.items():
            key = _OPTION_NAMES.get(key, key)
            if key in _OPTIONS:
                options[key] = value
            else:
                body[key] = value  # think, format, keep_alive, tools, options...
        if options:
            body["options"] = {**options, **as_dict(body.get("options"))}
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        return RequestSpec("POST", join_url(base_url, "api/chat"), headers, body)

    def models_request(self, *, api_key: str | None, base_url: str) -> RequestSpec:
        return RequestSpec("GET", join_url(base_url, "api/tags"))

    def model_names(self, body: Any) -> list[str]:
        return [as_str(as_dict(m).get("name")) for m in as_list(as_dict(body).get("models"))]
