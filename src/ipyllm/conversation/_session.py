"""Conversations: the turns of a named session, what is sent as history, and exports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..transcript import Transcript

Message = dict[str, Any]

# Context windows in tokens, by model-name prefix; the first match wins.
_CONTEXT_WINDOWS = (
    ("gpt-4.1", 1_000_000),
    ("gpt-4o", 128_000),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("gpt-3.5", 16_000),
    ("claude", 200_000),
    ("gemini", 1_000_000),
    ("deepseek", 128_000),
    ("demo", 8_000),
)
DEFAULT_CONTEXT_WINDOW = 8_000  # local models (Ollama's default num_ctx is smaller still)
_ANSWER_RESERVE = 1_024  # tokens kept free for the answer when max_tokens is not set
STOPPED_MARK = "[stopped by the user]"  # ends a stopped answer sent as history


def context_window(model: str) -> int:
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" on OpenRouter
    for prefix, tokens in _CONTEXT_WINDOWS:
        if name.startswith(prefix):
            return tokens
    return DEFAULT_CONTEXT_WINDOW


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters a token), enough to decide what to trim."""
    return len(text) // 4 + 4


IMAGE_TOKENS = 1_000
"""What an image counts for in the context budget: a fixed estimate (providers count a
picture's tiles or pixels, roughly 250 to 1,600 tokens for the usual sizes)."""


def message_tokens(content: Any) -> int:
    """The estimated tokens of a message's content: its text, and each image at
    :data:`IMAGE_TOKENS`."""
    if isinstance(content, str):
        return estimate_tokens(content)
    parts = content if isinstance(content, list) else []
    kinds = [(p.get("type"), p) for p in parts if isinstance(p, dict)]
    text = "".join(str(p.get("text", "")) for kind, p in kinds if kind == "text")
    images = sum(1 for kind, _ in kinds if kind == "image_url")
    return estimate_tokens(text) + images * IMAGE_TOKENS


def user_message(prompt: str, images: list[Message] | None = None) -> Message:
    """A user message: the prompt alone, or its images (encoded parts) then its text."""
    if not images:
        return {"role": "user", "content": prompt}
    return {"role": "user", "content": [*images, {"type": "text", "text": prompt}]}


@dataclass
class Turn:
    """One exchange: the prompt as sent and the transcript of its answer."""

    prompt: str
    transcript: Transcript
    cell_id: str | None = None
    images: list[Message] = field(default_factory=list)
    """The images sent with the prompt, encoded once and resent as history."""

    @property
    def finished(self) -> bool:
        return self.transcript.finished

    def messages(self) -> list[Message]:
        """The turn as history. The rule: a complete answer is sent as it is; a stopped one
        as far as the user saw it, marked "[stopped by the user]"; a failed one, or one
        with nothing in it, not at all (its prompt neither), so the model never takes a
        broken answer for its own complete one."""
        answer, status = self.transcript.text, self.transcript.status
        if not answer or status == "error":
            return []
        if status == "stopped":
            answer = f"{answer.rstrip()}\n\n{STOPPED_MARK}"
        return [user_message(self.prompt, self.images), {"role": "assistant", "content": answer}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "prompt": self.prompt,
            "answer": self.transcript.text,
            **{k: v for k, v in self.transcript.to_dict().items() if k not in ("messages", "text")},
        }


@dataclass
class Session:
    name: str
    turns: list[Turn] = field(default_factory=list)

    def position_for(self, cell_id: str | None, prompt: str) -> int:
        """Where a new turn goes: over the earlier turn of the same cell, else at the end.

        A re-run cell is recognised by its cell id. Without one (frontends that do not
        send it), a prompt that repeats the last turn's is taken for a re-run of it.
        """
        if cell_id is not None:
            for index, earlier in enumerate(self.turns):
                if earlier.cell_id == cell_id:
                    return index
            return len(self.turns)
        last = self.turns[-1] if self.turns else None
        if last is not None and last.cell_id is None and last.prompt == prompt:
            return len(self.turns) - 1
        return len(self.turns)

    def put(self, position: int, turn: Turn) -> None:
        if position < len(self.turns):
            self.turns[position] = turn
        else:
            self.turns.append(turn)

    def to_markdown(self) -> str:
        parts = [f"# Conversation: {self.name}"]
        for number, turn in enumerate(self.turns, 1):
            status = turn.transcript.status
            mark = "" if status == "done" else f" ({status})"
            parts.append(f"## Turn {number}{mark}\n\n**You:**\n\n{turn.prompt}")
            parts.append(f"**{turn.transcript.model or 'Assistant'}:**\n\n{turn.transcript.text}")
            if turn.transcript.error is not None:
                parts.append(f"> Error: {turn.transcript.error}")
        return "\n\n".join(parts) + "\n"

    def to_json(self) -> str:
        return json.dumps(
            {"session": self.name, "turns": [turn.to_dict() for turn in self.turns]},
            indent=2,
            ensure_ascii=False,
        )


def history_messages(
    earlier: list[Turn],
    system: str | None,
    prompt: str,
    *,
    budget: int,
    images: list[Message] | None = None,
) -> tuple[list[Message], int]:
    """Messages for a new turn, dropping the oldest turns to fit ``budget`` tokens.

    Only finished turns count (a turn still streaming in another cell is not history
    yet). The system prompt and the new prompt (with its ``images``) are always kept;
    earlier turns resend their images, each counted as :data:`IMAGE_TOKENS`. Returns the
    messages and how many turns were left out.
    """
    turns = [turn.messages() for turn in earlier if turn.finished]
    turns = [messages for messages in turns if messages]
    new = user_message(prompt, images)
    fixed = message_tokens(new["content"]) + (estimate_tokens(system) if system else 0)
    sizes = [sum(message_tokens(m["content"]) for m in messages) for messages in turns]
    dropped = 0
    while turns and fixed + sum(sizes) > budget:
        turns.pop(0)
        sizes.pop(0)
        dropped += 1
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    for pair in turns:
        messages += pair
    messages.append(new)
    return messages, dropped


def prompt_budget(model: str, max_tokens: int | None, override: int | None) -> int:
    window = override or context_window(model)
    return max(window - (max_tokens or _ANSWER_RESERVE), window // 4)
