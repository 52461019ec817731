"""OpenAI's formats: Chat Completions, legacy completions and Responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ipyllm.server._formats import (
    Dialect,
    Event,
    Generation,
    Prompt,
    parse_max_tokens,
    parse_messages,
    sse,
    sub_object,
)
from ipyllm.server._inputs import chat_images, chat_schema, responses_images, responses_schema

_OPENAI_STREAM_ERROR = sse(
    {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
)

_DONE = b"data: [DONE]\n\n"
# llama.cpp before its error-event change (2025): an ``error:`` field, which the SSE rules
# tell clients to ignore, then the usual end marker.
_LLAMACPP_STREAM_ERROR = [
    b'error: {"code":500,"message":"The model failed while generating the answer.",'
    b'"type":"server_error"}\n\n',
    _DONE,
]
# OpenRouter: a chunk with the error beside a choice whose finish reason is "error".
_OPENROUTER_ERROR = {"code": "server_error", "message": "The upstream provider disconnected."}


class ChatCompletions(Dialect):
    family = "openai"
    error_styles = ("llamacpp", "openrouter")

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
        return Prompt(
            messages=parse_messages(payload.get("messages"), "messages"),
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", False)),
            max_tokens=parse_max_tokens(limit, "max_tokens"),
            include_usage=bool(sub_object(payload, "stream_options").get("include_usage")),
            images=tuple(chat_images(payload.get("messages"))),
            schema=chat_schema(payload),
        )

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": f"chatcmpl-demo{self.gen.number:06d}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.gen.model,
            "system_fingerprint": "fp_ipyllm_demo",
            "choices": choices,
        }
        if self.gen.include_usage:
            chunk["usage"] = None
        return sse(chunk | extra)

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._chunk(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )

    def _usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.gen.prompt_tokens,
            "completion_tokens": self.gen.completion_tokens,
            "total_tokens": self.gen.prompt_tokens + self.gen.completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": len(self.gen.reasoning)},
        }

    def events(self) -> Iterator[Event]:
        yield Event(self._delta({"role": "assistant", "content": "", "refusal": None}), False)
        for token in self.gen.reasoning:
            yield Event(self._delta({"content": None, "reasoning_content": token}), True)
        for token in self.gen.answer:
            yield Event(self._delta({"content": token}), True)
        yield Event(self._delta({}, "length" if self.gen.truncated else "stop"), False)
        if self.gen.include_usage:
            yield Event(self._chunk([], usage=self._usage()), False)
        yield Event(_DONE, False)

    def error_events(self, style: str | None = None) -> list[bytes]:
        if style == "llamacpp":
            return _LLAMACPP_STREAM_ERROR
        if style == "openrouter":
            choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
            return [self._chunk([choice], error=_OPENROUTER_ERROR), _DONE]
        return [_OPENAI_STREAM_ERROR]

    def malformed_event(self) -> bytes:
        return b'data: {"id":"chatcmpl-demo","choices":[{"delta":{"content":"x"\n\n'

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.gen.text, "refusal": None}
        if self.gen.reasoning:
            message["reasoning_content"] = self.gen.reasoning_text
        return {
            "id": f"chatcmpl-demo{self.gen.number:06d}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.gen.model,
            "system_fingerprint": "fp_ipyllm_demo",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "length" if self.gen.truncated else "stop",
                }
            ],
            "usage": self._usage(),
        }


class LegacyCompletions(Dialect):
    family = "openai"
    reasoning = False
    error_styles = ("llamacpp", "openrouter")

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        prompt = payload.get("prompt", "")
        if isinstance(prompt, list):
            prompt = "\n".join(map(str, prompt))
        return Prompt(
            messages=[{"role": "user", "content": str(prompt)}],
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", False)),
            max_tokens=parse_max_tokens(payload.get("max_tokens"), "max_tokens"),
            include_usage=bool(sub_object(payload, "stream_options").get("include_usage")),
        )

    def _completion(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": f"cmpl-demo{self.gen.number:06d}",
            "object": "text_completion",
            "created": self.created,
            "choices": choices,
            "model": self.gen.model,
        } | extra

    def _choice(self, text: str, finish: str | None = None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    def _usage(self) -> dict[str, int]:
        done = self.gen.completion_tokens
        return {
            "prompt_tokens": self.gen.prompt_tokens,
            "completion_tokens": done,
            "total_tokens": self.gen.prompt_tokens + done,
        }

    def _finish(self) -> str:
        return "length" if self.gen.truncated else "stop"

    def events(self) -> Iterator[Event]:
        for token in self.gen.answer:
            yield Event(sse(self._completion([self._choice(token)])), True)
        yield Event(sse(self._completion([self._choice("", self._finish())])), False)
        if self.gen.include_usage:
            yield Event(sse(self._completion([], usage=self._usage())), False)
        yield Event(_DONE, False)

    def error_events(self, style: str | None = None) -> list[bytes]:
        if style == "llamacpp":
            return _LLAMACPP_STREAM_ERROR
        if style == "openrouter":
            choice = self._choice("", "error")
            return [sse(self._completion([choice], error=_OPENROUTER_ERROR)), _DONE]
        return [_OPENAI_STREAM_ERROR]

    def malformed_event(self) -> bytes:
        return b'data: {"id":"cmpl-demo","object":"text_completion","choices":[{"text":"x"\n\n'

    def whole(self) -> dict[str, Any]:
        return self._completion([self._choice(self.gen.text, self._finish())], usage=self._usage())


class Responses(Dialect):
    family = "openai"

    def __init__(self, gen: Generation) -> None:
        super().__init__(gen)
        self.sequence = 0
        self.response_id = f"resp_demo{gen.number:06d}"
        self.reasoning_id = f"rs_demo{gen.number:06d}"
        self.message_id = f"msg_demo{gen.number:06d}"
        self.message_index = 1 if gen.reasoning else 0

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        given = payload.get("input", "")
        messages = (
            [{"role": "user", "content": given}]
            if isinstance(given, str)
            else parse_messages(given, "input")
        )
        if isinstance(payload.get("instructions"), str):
            messages.insert(0, {"role": "system", "content": payload["instructions"]})
        return Prompt(
            messages=messages,
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", False)),
            max_tokens=parse_max_tokens(payload.get("max_output_tokens"), "max_output_tokens"),
            images=tuple(responses_images(given)),
            schema=responses_schema(payload),
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence} | fields
        self.sequence += 1
        return sse(data, event=kind)

    def _reasoning_item(self) -> dict[str, Any]:
        summary = [{"type": "summary_text", "text": self.gen.reasoning_text}]
        return {"id": self.reasoning_id, "type": "reasoning", "summary": summary}

    def _message_item(self, status: str) -> dict[str, Any]:
        content = [] if status == "in_progress" else [self._text_part(self.gen.text)]
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant",
        }

    @staticmethod
    def _text_part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.gen.model,
            "output": [],
            "usage": None,
        } | fields

    def _final_status(self) -> str:
        return "incomplete" if self.gen.truncated else "completed"

    def _final_response(self) -> dict[str, Any]:
        output = [self._reasoning_item()] if self.gen.reasoning else []
        output.append(self._message_item(self._final_status()))
        return self._response(
            self._final_status(),
            output=output,
            incomplete_details={"reason": "max_output_tokens"} if self.gen.truncated else None,
            usage={
                "input_tokens": self.gen.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.gen.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": len(self.gen.reasoning)},
                "total_tokens": self.gen.prompt_tokens + self.gen.completion_tokens,
            },
        )

    def events(self) -> Iterator[Event]:
        yield Event(self._event("response.created", response=self._response("in_progress")), False)
        yield Event(
            self._event("response.in_progress", response=self._response("in_progress")), False
        )
        if self.gen.reasoning:
            yield from self._reasoning_events()
        where = {"item_id": self.message_id, "output_index": self.message_index}
        yield Event(
            self._event(
                "response.output_item.added",
                output_index=self.message_index,
                item=self._message_item("in_progress"),
            ),
            False,
        )
        yield Event(
            self._event(
                "response.content_part.added",
                **where,
                content_index=0,
                part=self._text_part(""),
            ),
            False,
        )
        for token in self.gen.answer:
            yield Event(
                self._event(
                    "response.output_text.delta",
                    **where,
                    content_index=0,
                    delta=token,
                    logprobs=[],
                ),
                True,
            )
        yield Event(
            self._event(
                "response.output_text.done",
                **where,
                content_index=0,
                text=self.gen.text,
                logprobs=[],
            ),
            False,
        )
        yield Event(
            self._event(
                "response.content_part.done",
                **where,
                content_index=0,
                part=self._text_part(self.gen.text),
            ),
            False,
        )
        yield Event(
            self._event(
                "response.output_item.done",
                output_index=self.message_index,
                item=self._message_item(self._final_status()),
            ),
            False,
        )
        final = "response.incomplete" if self.gen.truncated else "response.completed"
        yield Event(self._event(final, response=self._final_response()), False)

    def _reasoning_events(self) -> Iterator[Event]:
        where = {"item_id": self.reasoning_id, "output_index": 0, "summary_index": 0}
        text = self.gen.reasoning_text
        yield Event(
            self._event(
                "response.output_item.added",
                output_index=0,
                item={"id": self.reasoning_id, "type": "reasoning", "summary": []},
            ),
            False,
        )
        yield Event(
            self._event(
                "response.reasoning_summary_part.added",
                **where,
                part={"type": "summary_text", "text": ""},
            ),
            False,
        )
        for token in self.gen.reasoning:
            yield Event(
                self._event("response.reasoning_summary_text.delta", **where, delta=token), True
            )
        yield Event(self._event("response.reasoning_summary_text.done", **where, text=text), False)
        yield Event(
            self._event(
                "response.reasoning_summary_part.done",
                **where,
                part={"type": "summary_text", "text": text},
            ),
            False,
        )
        yield Event(
            self._event(
                "response.output_item.done",
                output_index=0,
                item=self._reasoning_item(),
            ),
            False,
        )

    def error_events(self, style: str | None = None) -> list[bytes]:
        error = {
            "code": "server_error",
            "message": "An error occurred while processing your request.",
        }
        return [
            self._event("error", **error, param=None),
            self._event("response.failed", response=self._response("failed", error=error)),
        ]

    def malformed_event(self) -> bytes:
        return (
            b"event: response.output_text.delta\n"
            b'data: {"type":"response.output_text.delta","delta":"x"\n\n'
        )

    def whole(self) -> dict[str, Any]:
        return self._final_response()
