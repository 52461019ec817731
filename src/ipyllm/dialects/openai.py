"""OpenAI's Chat Completions (and every compatible server), legacy Completions, Responses."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from ..events import (
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
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
    text_of,
)
from ._content import to_responses

if TYPE_CHECKING:
    from ._schema import Schema


def _bearer(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _openai_usage(usage: dict[str, Any]) -> UsageUpdate:
    return UsageUpdate(
        raw=usage,
        input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
        total_tokens=as_int(usage.get("total_tokens")),
    )


class _ChunkParser(Parser):
    """Chat and legacy completion chunks: data events, choices, usage, then [DONE]."""

    def parse(self, event: WireEvent) -> list[Event]:
        if event.data == "[DONE]":
            self.terminated = True
            return []
        chunk = self.load(event)
        events: list[Event] = []
        for choice in as_list(chunk.get("choices")):  # empty on usage-only and Azure chunks
            if type(choice) is not dict or choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: follow the first choice
            events += self._choice_deltas(choice)
            finish = choice.get("finish_reason")
            if type(finish) is str and finish:
                events.append(Finish(finish))
        usage = chunk.get("usage")
        if type(usage) is dict and usage:
            events.append(_openai_usage(usage))
        error = chunk.get("error")
        if error or (not events and (event.event == "error" or chunk.get("object") == "error")):
            # {"error": {...}} (OpenAI, vLLM, llama.cpp), also beside a choice whose finish
            # reason is "error" (OpenRouter); llama.cpp's old "error:" field, whose value is
            # the error itself; vLLM's flat {"object": "error", "message": ...}.
            events.append(error_event(error or chunk))
        return events

    def parse_answer(self, answer: Any) -> list[Event] | None:
        if type(answer) is not dict or type(answer.get("choices")) is not list:
            return None  # an error document, or not an answer at all
        events: list[Event] = []
        for choice in answer["choices"]:
            if type(choice) is dict and choice.get("index", 0) == 0:
                events += self._answer_deltas(choice)
                finish = choice.get("finish_reason")
                if type(finish) is str and finish:
                    events.append(Finish(finish))
        if type(answer.get("usage")) is dict and answer["usage"]:
            events.append(_openai_usage(answer["usage"]))
        if answer.get("error"):
            events.append(error_event(answer["error"]))
        return events

    def _choice_deltas(self, choice: dict[str, Any]) -> list[Event]:
        raise NotImplementedError

    def _answer_deltas(self, choice: dict[str, Any]) -> list[Event]:
        """What a choice of a whole, non-streamed answer holds."""
        raise NotImplementedError


class OpenAIChatParser(_ChunkParser):
    provider = "openai"

    def _choice_deltas(self, choice: dict[str, Any]) -> list[Event]:
        delta = choice.get("delta")
        if type(delta) is not dict:
            return []
        content = delta.get("content")
        text: list[Event] = [TextDelta(content)] if type(content) is str and content else []
        if len(delta) > 1 or content is None:  # the hot path is {"content": "..."}
            before, after = self._other_deltas(delta)
            return before + text + after
        return text

    def _answer_deltas(self, choice: dict[str, Any]) -> list[Event]:
        message = as_dict(choice.get("message"))
        text = text_of(message.get("content"))
        before, after = self._other_deltas(message, whole=True)
        return before + ([TextDelta(text)] if text else []) + after

    @staticmethod
    def _other_deltas(
        delta: dict[str, Any], whole: bool = False
    ) -> tuple[list[Event], list[Event]]:
        """Reasoning (shown before the text), then refusal and tool-call fragments (after).

        ``whole``: a non-streamed message, whose tool calls have no index (their order is
        it) and may have arguments as an object (some compatible servers).
        """
        events: list[Event] = []
        # DeepSeek and vLLM say reasoning_content, OpenRouter and Ollama say reasoning.
        reasoning = as_str(delta.get("reasoning_content")) or as_str(delta.get("reasoning"))
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        tail: list[Event] = []
        refusal = as_str(delta.get("refusal"))
        if refusal:
            tail.append(RefusalDelta(refusal))
        for position, call in enumerate(as_list(delta.get("tool_calls"))):
            call = as_dict(call)
            function = as_dict(call.get("function"))
            index = as_int(call.get("index"))
            arguments = function.get("arguments")
            if whole and arguments is not None and not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            tail.append(
                ToolCallDelta(
                    index=(position if whole else 0) if index is None else index,
                    id=as_str(call.get("id")) or None,
                    name=as_str(function.get("name")) or None,
                    arguments=as_str(arguments),
                )
            )
        return events, tail


class OpenAIChat(Dialect):
    name = "openai"
    # Declared again so that subclasses (the demo, the other OpenAI APIs) may override them.
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    error_field: ClassVar[bool] = True  # llama.cpp serves this API
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-4o-mini"
    parser_class: ClassVar[type[Parser]] = OpenAIChatParser

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
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if schema is not None:
            strict = schema.strict()
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "schema": schema.json if strict is None else strict,
                    "strict": strict is not None,
                },
            }
        body.update(params)
        if body.get("stream_options") is None or not body.get("stream"):
            # Turned off for a server that rejects it, or a whole answer asked for
            # (params={"stream": False}), which may not carry it.
            body.pop("stream_options", None)
        return RequestSpec("POST", join_url(base_url, "chat/completions"), _bearer(api_key), body)

    def models_request(self, *, api_key: str | None, base_url: str) -> RequestSpec:
        return RequestSpec("GET", join_url(base_url, "models"), _bearer(api_key))

    def model_names(self, body: Any) -> list[str]:
        return [as_str(as_dict(m).get("id")) for m in as_list(as_dict(body).get("data"))]


class OpenAICompletionsParser(_ChunkParser):
    provider = "openai-completions"

    def _choice_deltas(self, choice: dict[str, Any]) -> list[Event]:
        text = as_str(choice.get("text"))
        return [TextDelta(text)] if text else []

    _answer_deltas = _choice_deltas  # a whole answer's choice has its text where a chunk has


class OpenAICompletions(OpenAIChat):
    name = "openai-completions"
    default_model = "gpt-3.5-turbo-instruct"
    parser_class = OpenAICompletionsParser
    takes_images = False  # a prompt is a string
    takes_schema = False

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
        if len(messages) == 1:
            prompt = text_of(messages[0].get("content"))
        else:  # a plain-text rendering of the conversation, for completion models
            lines = [f"{m.get('role', 'user')}: {text_of(m.get('content'))}" for m in messages]
            prompt = "\n\n".join([*lines, "assistant:"])
        body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": True}
        body.update(params)
        return RequestSpec("POST", join_url(base_url, "completions"), _bearer(api_key), body)


class OpenAIResponsesParser(Parser):
    provider = "openai-responses"

    def parse(self, event: WireEvent) -> list[Event]:
        data = self.load(event)
        kind = as_str(data.get("type")) or event.event
        if kind == "response.output_text.delta":
            return [TextDelta(as_str(data.get("delta")))]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ReasoningDelta(as_str(data.get("delta")))]
        if kind == "response.refusal.delta":
            return [RefusalDelta(as_str(data.get("delta")))]
        if kind == "response.output_item.added":
            item = as_dict(data.get("item"))
            if item.get("type") == "function_call":
                return [
                    ToolCallDelta(
                        index=as_int(data.get("output_index")) or 0,
                        id=as_str(item.get("call_id")) or as_str(item.get("id")) or None,
                        name=as_str(item.get("name")) or None,
                        arguments=as_str(item.get("arguments")),
                    )
                ]
            return []
        if kind == "response.function_call_arguments.delta":
            index = as_int(data.get("output_index")) or 0
            return [ToolCallDelta(index=index, arguments=as_str(data.get("delta")))]
        if kind == "error":  # flat: its "type" names the event, not the error
            return [error_event({k: v for k, v in data.items() if k != "type"})]
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.terminated = True
            return self._final(as_dict(data.get("response")), kind)
        return []

    def parse_answer(self, answer: Any) -> list[Event] | None:
        if type(answer) is not dict or type(answer.get("output")) is not list:
            return None  # an error document, or not a response object
        events: list[Event] = []
        for position, item in enumerate(answer["output"]):
            events += self._output_item(position, as_dict(item))
        return events + self._final(answer, "response.completed")

    @staticmethod
    def _output_item(position: int, item: dict[str, Any]) -> list[Event]:
        """One item of a whole response's output: a message, reasoning or a tool call."""
        kind = item.get("type")
        events: list[Event] = []
        if kind == "function_call":
            call_id = as_str(item.get("call_id")) or as_str(item.get("id")) or None
            name = as_str(item.get("name")) or None
            return [ToolCallDelta(position, call_id, name, as_str(item.get("arguments")))]
        if kind == "reasoning":
            parts = as_list(item.get("summary")) or as_list(item.get("content"))
            reasoning = "".join(as_str(as_dict(part).get("text")) for part in parts)
            return [ReasoningDelta(reasoning)] if reasoning else []
        if kind == "message":
            for part in map(as_dict, as_list(item.get("content"))):
                if part.get("type") == "refusal" and as_str(part.get("refusal")):
                    events.append(RefusalDelta(as_str(part.get("refusal"))))
                elif as_str(part.get("text")):
                    events.append(TextDelta(as_str(part.get("text"))))
        return events

    def _final(self, response: dict[str, Any], kind: str) -> list[Event]:
        events: list[Event] = []
        if response.get("error"):
            events.append(error_event(response["error"]))
        status = as_str(response.get("status")) or kind.removeprefix("response.")
        # An incomplete answer says why: max_output_tokens or content_filter.
        reason = as_str(as_dict(response.get("incomplete_details")).get("reason"))
        events.append(Finish(reason or status))
        usage = response.get("usage")
        if isinstance(usage, dict) and usage:
            events.append(_openai_usage(usage))
        return events


class OpenAIResponses(OpenAIChat):
    name = "openai-responses"
    error_field = False  # its errors are named events of their own
    default_model = "gpt-4.1-mini"
    parser_class = OpenAIResponsesParser

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
        body: dict[str, Any] = {"model": model, "input": to_responses(messages), "stream": True}
        params = dict(params)
        if "max_tokens" in params:
            body["max_output_tokens"] = params.pop("max_tokens")
        if schema is not None:
            strict = schema.strict()
            answer_format = {
                "type": "json_schema",
                "name": schema.name,
                "schema": schema.json if strict is None else strict,
                "strict": strict is not None,
            }
            # Beside the caller's own text options (verbosity), if any.
            params["text"] = {**as_dict(params.get("text")), "format": answer_format}
        body.update(params)
        return RequestSpec("POST", join_url(base_url, "responses"), _bearer(api_key), body)
