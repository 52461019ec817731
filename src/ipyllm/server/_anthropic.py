"""Anthropic Messages: named events, content blocks routed by index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ipyllm.server._formats import (
    Dialect,
    Event,
    Prompt,
    parse_max_tokens,
    parse_messages,
    sse,
    text_of,
)
from ipyllm.server._inputs import anthropic_images, anthropic_tool


class AnthropicMessages(Dialect):
    family = "anthropic"

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        messages = parse_messages(payload.get("messages"), "messages")
        system = text_of(payload.get("system"))
        if system:
            messages.insert(0, {"role": "system", "content": system})
        tool = anthropic_tool(payload)
        return Prompt(
            messages=messages,
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", False)),
            max_tokens=parse_max_tokens(payload.get("max_tokens"), "max_tokens"),
            images=tuple(anthropic_images(payload.get("messages"))),
            schema=None if tool is None else tool[1],
            tool=None if tool is None else tool[0],
        )

    def _stop_reason(self) -> str:
        if self.gen.truncated:
            return "max_tokens"
        return "tool_use" if self.gen.tool else "end_turn"

    def _tool_events(self) -> Iterator[Event]:
        """A forced tool's answer: a tool_use block whose input streams as JSON pieces."""
        block: dict[str, Any] = {"type": "tool_use", "id": self._tool_id(), "name": self.gen.tool}
        block["input"] = {}
        yield Event(self._event("content_block_start", index=0, content_block=block), False)
        for token in self.gen.answer:
            delta = {"type": "input_json_delta", "partial_json": token}
            yield Event(self._event("content_block_delta", index=0, delta=delta), True)
        yield Event(self._event("content_block_stop", index=0), False)

    def _tool_id(self) -> str:
        return f"toolu_demo{self.gen.number:06d}"

    def _event(self, kind: str, **fields: Any) -> bytes:
        return sse({"type": kind} | fields, event=kind)

    def _block_events(self, index: int, kind: str, tokens: list[str]) -> Iterator[Event]:
        delta_type, field_name = (
            ("thinking_delta", "thinking") if kind == "thinking" else ("text_delta", "text")
        )
        block = {"type": kind, kind: ""} | ({"signature": ""} if kind == "thinking" else {})
        yield Event(self._event("content_block_start", index=index, content_block=block), False)
        if index == 0:
            yield Event(self._event("ping"), False)
        for token in tokens:
            delta = {"type": delta_type, field_name: token}
            yield Event(self._event("content_block_delta", index=index, delta=delta), True)
        if kind == "thinking":
            delta = {"type": "signature_delta", "signature": _SIGNATURE}
            yield Event(self._event("content_block_delta", index=index, delta=delta), False)
        yield Event(self._event("content_block_stop", index=index), False)

    def events(self) -> Iterator[Event]:
        message = self._message(content=[], stop_reason=None) | {
            "usage": {
                "input_tokens": self.gen.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            }
        }
        yield Event(self._event("message_start", message=message), False)
        if self.gen.tool:
            yield from self._tool_events()
        else:
            if self.gen.reasoning:
                yield from self._block_events(0, "thinking", self.gen.reasoning)
            yield from self._block_events(1 if self.gen.reasoning else 0, "text", self.gen.answer)
        yield Event(
            self._event(
                "message_delta",
                delta={"stop_reason": self._stop_reason(), "stop_sequence": None},
                usage={"output_tokens": self.gen.completion_tokens},
            ),
            False,
        )
        yield Event(self._event("message_stop"), False)

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
        return {
            "id": f"msg_demo{self.gen.number:06d}",
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": self.gen.model,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }

    def error_events(self, style: str | None = None) -> list[bytes]:
        return [self._event("error", error={"type": "overloaded_error", "message": "Overloaded"})]

    def malformed_event(self) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"'
            b"\n\n"
        )

    def whole(self) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if self.gen.reasoning:
            content.append(
                {"type": "thinking", "thinking": self.gen.reasoning_text, "signature": _SIGNATURE}
            )
        if self.gen.tool:
            given = json.loads(self.gen.text) if not self.gen.truncated else {}
            content.append({"type": "tool_use", "id": self._tool_id(), "name": self.gen.tool,
                            "input": given})  # fmt: skip
        else:
            content.append({"type": "text", "text": self.gen.text})
        return self._message(content, self._stop_reason()) | {
            "usage": {
                "input_tokens": self.gen.prompt_tokens,
                "output_tokens": self.gen.completion_tokens,
            }
        }


_SIGNATURE = "ZGVtby10aGlua2luZy1zaWduYXR1cmU="  # base64 of "demo-thinking-signature"
