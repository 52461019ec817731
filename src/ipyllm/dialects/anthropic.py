"""Anthropic's Messages API: named events, content blocks routed by index."""

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
from ._content import to_anthropic

if TYPE_CHECKING:
    from ._schema import Schema

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens


class AnthropicParser(Parser):
    provider = "anthropic"

    def __init__(self, answer_tool: str | None = None) -> None:
        super().__init__()
        self._usage: dict[str, Any] = {}
        self._answer_tool = answer_tool
        """The forced tool whose input is a structured answer: its JSON is the answer's text."""
        self._answer_blocks: set[int] = set()

    def parse(self, event: WireEvent) -> list[Event]:
        data = self.load(event)
        kind = as_str(data.get("type")) or event.event
        if kind == "content_block_delta":
            return self._delta(as_int(data.get("index")) or 0, as_dict(data.get("delta")))
        if kind == "content_block_start":
            block = as_dict(data.get("content_block"))
            index = as_int(data.get("index")) or 0
            if block.get("type") == "tool_use":
                if self._answer_tool is not None and block.get("name") == self._answer_tool:
                    self._answer_blocks.add(index)  # its input streams as the answer's text
                    return []
                return [
                    ToolCallDelta(
                        index=index,
                        id=as_str(block.get("id")) or None,
                        name=as_str(block.get("name")) or None,
                    )
                ]
            return self._delta(index, block)  # a block may start with some text already
        if kind == "message_start":
            # Only input tokens are final here; usage is reported once message_delta completes it.
            self._remember_usage(as_dict(as_dict(data.get("message")).get("usage")))
            return []
        if kind == "message_delta":
            events: list[Event] = []
            stop = as_dict(data.get("delta")).get("stop_reason")
            if isinstance(stop, str) and stop:
                events.append(Finish(stop))
            # Output tokens here are cumulative: they replace the start's count, never add.
            events += self._merge_usage(as_dict(data.get("usage")))
            return events
        if kind == "message_stop":
            self.terminated = True
            return []
        if kind == "error":
            return [error_event(as_dict(data.get("error")))]
        return []  # ping, content_block_stop, and event types added later

    def parse_answer(self, answer: Any) -> list[Event] | None:
        if type(answer) is not dict or type(answer.get("content")) is not list:
            return None  # {"type": "error", "error": {...}}, or not a message
        events: list[Event] = []
        for index, block in enumerate(map(as_dict, answer["content"])):
            the_answer = self._answer_tool is not None and block.get("name") == self._answer_tool
            if block.get("type") == "tool_use" and the_answer:
                events.append(TextDelta(json.dumps(block.get("input"), ensure_ascii=False)))
            elif block.get("type") == "tool_use":
                arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
                call_id, name = as_str(block.get("id")) or None, as_str(block.get("name")) or None
                events.append(ToolCallDelta(index, call_id, name, arguments))
            else:
                events += self._delta(index, block)  # text and thinking blocks
        stop = answer.get("stop_reason")
        if isinstance(stop, str) and stop:
            events.append(Finish(stop))
        return events + self._merge_usage(as_dict(answer.get("usage")))

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        kind = delta.get("type")
        if kind in ("text_delta", "text"):
            text = as_str(delta.get("text"))
            return [TextDelta(text)] if text else []
        if kind in ("thinking_delta", "thinking"):
            thinking = as_str(delta.get("thinking"))
            return [ReasoningDelta(thinking)] if thinking else []
        if kind == "input_json_delta":
            partial = as_str(delta.get("partial_json"))
            if index in self._answer_blocks:
                return [TextDelta(partial)] if partial else []
            return [ToolCallDelta(index=index, arguments=partial)]
        return []  # signature_delta, citations_delta

    def _remember_usage(self, usage: dict[str, Any]) -> None:
        self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _merge_usage(self, usage: dict[str, Any]) -> list[Event]:
        if not usage:
            return []
        self._remember_usage(usage)
        raw = dict(self._usage)
        input_tokens = as_int(raw.get("input_tokens"))
        output_tokens = as_int(raw.get("output_tokens"))
        total = None
        if input_tokens is not None and output_tokens is not None:
            total = input_tokens + output_tokens
        return [UsageUpdate(raw, input_tokens, output_tokens, total)]


class Anthropic(Dialect):
    name = "anthropic"
    api_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    default_model = "claude-sonnet-4-5"
    parser_class = AnthropicParser

    @staticmethod
    def _headers(api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

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
        body: dict[str, Any] = {
            "model": model,
            "messages": to_anthropic(conversation),
            "max_tokens": DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            body["system"] = system
        params = dict(params)
        if "stop" in params:
            stop = params.pop("stop")
            body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        if schema is not None:
            # A forced tool whose input_schema is the schema: its input is the answer.
            tool = {
                "name": schema.name,
                "description": "Give the answer with this tool: its input is the answer.",
                "input_schema": schema.json,
            }
            params["tools"] = [*as_list(params.get("tools")), tool]
            params["tool_choice"] = {"type": "tool", "name": schema.name}
        body.update(params)
        return RequestSpec("POST", join_url(base_url, "v1/messages"), self._headers(api_key), body)

    def new_parser(self, schema: Schema | None = None) -> Parser:
        return AnthropicParser(answer_tool=None if schema is None else schema.name)

    def models_request(self, *, api_key: str | None, base_url: str) -> RequestSpec:
        return RequestSpec("GET", join_url(base_url, "v1/models"), self._headers(api_key))

    def model_names(self, body: Any) -> list[str]:
        return [as_str(as_dict(m).get("id")) for m in as_list(as_dict(body).get("data"))]
