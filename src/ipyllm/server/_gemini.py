"""Gemini ``streamGenerateContent?alt=sse``: CRLF events, each a whole response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ipyllm.server._formats import (
    Dialect,
    Event,
    Prompt,
    RequestError,
    parse_max_tokens,
    sub_object,
    text_of,
)
from ipyllm.server._inputs import gemini_images, gemini_schema


class Gemini(Dialect):
    family = "gemini"

    @staticmethod
    def parse(payload: dict[str, Any]) -> Prompt:
        contents = payload.get("contents")
        if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
            raise RequestError("'contents' must be a list of content objects")
        messages = [
            {
                "role": "assistant" if c.get("role") == "model" else "user",
                "content": text_of(c.get("parts")),
            }
            for c in contents
        ]
        system = text_of(sub_object(payload, "systemInstruction").get("parts"))
        if system:
            messages.insert(0, {"role": "system", "content": system})
        limit = sub_object(payload, "generationConfig").get("maxOutputTokens")
        return Prompt(
            messages=messages,
            model="demo",  # the model is in the path, not the body
            stream=True,
            max_tokens=parse_max_tokens(limit, "maxOutputTokens"),
            images=tuple(gemini_images(contents)),
            schema=gemini_schema(payload),
        )

    def _response(
        self, parts: list[dict[str, Any]], answered: int, thought: int, finish: str | None = None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        usage = {
            "promptTokenCount": self.gen.prompt_tokens,
            "candidatesTokenCount": answered,
            "totalTokenCount": self.gen.prompt_tokens + answered + thought,
        }
        if self.gen.reasoning:
            usage["thoughtsTokenCount"] = thought
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.gen.model,
            "responseId": f"demo{self.gen.number:06d}",
        }

    def _finish(self) -> str:
        return "MAX_TOKENS" if self.gen.truncated else "STOP"

    def events(self) -> Iterator[Event]:
        for count, token in enumerate(self.gen.reasoning, 1):
            yield Event(
                _crlf_sse(self._response([{"text": token, "thought": True}], 0, count)), True
            )
        thought = len(self.gen.reasoning)
        for count, token in enumerate(self.gen.answer, 1):
            yield Event(_crlf_sse(self._response([{"text": token}], count, thought)), True)
        final = self._response([{"text": ""}], len(self.gen.answer), thought, self._finish())
        yield Event(_crlf_sse(final), False)

    def error_events(self, style: str | None = None) -> list[bytes]:
        error = {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report the problem.",
            "status": "INTERNAL",
        }
        return [_crlf_sse({"error": error})]

    def malformed_event(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "x"\r\n\r\n'

    def whole(self) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if self.gen.reasoning:
            parts.append({"text": self.gen.reasoning_text, "thought": True})
        parts.append({"text": self.gen.text})
        return self._response(parts, len(self.gen.answer), len(self.gen.reasoning), self._finish())


def _crlf_sse(payload: dict[str, Any]) -> bytes:
    # Google's frontends write CRLF line endings and spaced JSON (see gemini_stream.sse).
    return f"data: {json.dumps(payload, ensure_ascii=False)}\r\n\r\n".encode()
