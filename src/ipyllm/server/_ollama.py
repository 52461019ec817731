"""Ollama's native API: one JSON object per line (NDJSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from ipyllm.server._formats import (
    Dialect,
    Event,
    Prompt,
    compact_json,
    parse_max_tokens,
    parse_messages,
    sub_object,
)
from ipyllm.server._inputs import ollama_images, ollama_schema


class OllamaChat(Dialect):
    family = "ollama"
    content_type = "application/x-ndjson"

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        return Prompt(
            messages=parse_messages(payload.get("messages"), "messages"),
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", True)),
            max_tokens=parse_max_tokens(
                sub_object(payload, "options").get("num_predict"), "num_predict"
            ),
            images=tuple(ollama_images(payload.get("messages"))),
            schema=ollama_schema(payload),
        )

    def _line(self, **fields: Any) -> bytes:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (
            compact_json({"model": self.gen.model, "created_at": stamp} | fields) + "\n"
        ).encode()

    def _piece(self, content: str, thinking: str | None = None) -> dict[str, Any]:
        message = {"role": "assistant", "content": content}
        if thinking is not None:
            message["thinking"] = thinking
        return {"message": message}

    def _final_fields(self) -> dict[str, Any]:
        evaluated = self.gen.completion_tokens
        return {
            "done": True,
            "done_reason": "length" if self.gen.truncated else "stop",
            "total_duration": 250_000_000 + 25_000_000 * evaluated,
            "load_duration": 1_000_000,
            "prompt_eval_count": self.gen.prompt_tokens,
            "prompt_eval_duration": 2_000_000 * self.gen.prompt_tokens,
            "eval_count": evaluated,
            "eval_duration": 25_000_000 * evaluated,
        }

    def events(self) -> Iterator[Event]:
        for token in self.gen.reasoning:
            yield Event(self._line(**self._piece("", thinking=token), done=False), True)
        for token in self.gen.answer:
            yield Event(self._line(**self._piece(token), done=False), True)
        yield Event(self._line(**self._piece(""), **self._final_fields()), False)

    def error_events(self, style: str | None = None) -> list[bytes]:
        return [b'{"error":"an error was encountered while running the model"}\n']

    def malformed_event(self) -> bytes:
        return b'{"model":"demo","message":{"role":"assistant","content":"x"\n'

    def whole(self) -> dict[str, Any]:
        thinking = self.gen.reasoning_text if self.gen.reasoning else None
        line = self._line(**self._piece(self.gen.text, thinking), **self._final_fields())
        whole: dict[str, Any] = json.loads(line)  # _line() always writes one JSON object
        return whole


class OllamaGenerate(OllamaChat):
    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        messages = [{"role": "user", "content": str(payload.get("prompt") or "")}]
        if isinstance(payload.get("system"), str):
            messages.insert(0, {"role": "system", "content": payload["system"]})
        return Prompt(
            messages=messages,
            model=str(payload.get("model") or "demo"),
            stream=bool(payload.get("stream", True)),
            max_tokens=parse_max_tokens(
                sub_object(payload, "options").get("num_predict"), "num_predict"
            ),
            images=tuple(ollama_images([{"images": payload.get("images")}])),
            schema=ollama_schema(payload),
        )

    def _piece(self, content: str, thinking: str | None = None) -> dict[str, Any]:
        return {"response": content} | ({"thinking": thinking} if thinking is not None else {})

    def _final_fields(self) -> dict[str, Any]:
        # Ollama hands back the context's token ids so a client can continue from them.
        return super()._final_fields() | {"context": list(range(1, self.gen.prompt_tokens + 1))}

    def malformed_event(self) -> bytes:
        return b'{"model":"demo","response":"x"\n'
