"""Message content with images: one neutral form in, each provider's own form out.

The neutral form is OpenAI's Chat Completions content: a string, or a list of parts,
``{"type": "text", "text": ...}`` and ``{"type": "image_url", "image_url": {"url":
"data:image/png;base64,..."}}``. The client builds it (``ipyllm.client.image_part``) and
history keeps it; each dialect writes the images the way its API documents: Responses'
``input_image``, Anthropic's ``image`` block with a base64 ``source``, Gemini's
``inline_data``, Ollama's ``images`` list of base64 strings on the message. Parts a
dialect does not know (a provider's own blocks, passed by a caller) go through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

Message = dict[str, Any]

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*?;base64,(?P<data>.*)", re.S)

# Models known to take text only, by name prefix (the provider's own name for them).
TEXT_ONLY_MODELS = (
    "gpt-3.5",
    "gpt-4-0613",
    "o1-mini",
    "o3-mini",
    "davinci",
    "babbage",
    "text-",
    "deepseek-chat",
    "deepseek-reasoner",
    "claude-2",
    "claude-instant",
)


@dataclass(frozen=True, slots=True)
class Image:
    """An image part, read: inline base64 bytes with their media type, or a URL."""

    media_type: str = ""
    data: str = ""  # base64
    url: str = ""  # http(s), when the image is not inline


def image_of(part: Any) -> Image | None:
    """The image of a neutral ``image_url`` part, else None (text, or a part of another kind)."""
    if type(part) is not dict or part.get("type") != "image_url":
        return None
    holder = part.get("image_url")
    url = holder.get("url") if type(holder) is dict else holder
    if type(url) is not str:
        return None
    inline = _DATA_URL.fullmatch(url)
    if inline:
        return Image(media_type=inline["type"] or "application/octet-stream", data=inline["data"])
    return Image(url=url)


def has_images(messages: list[Message]) -> bool:
    return any(
        image_of(part) is not None
        for message in messages
        if type(message.get("content")) is list
        for part in message["content"]
    )


def is_text(part: Any) -> bool:
    return type(part) is dict and part.get("type") == "text" and type(part.get("text")) is str


def _mapped(messages: list[Message], write: Any) -> list[Message]:
    """Messages whose list contents are rewritten part by part with ``write(part)``."""
    out = []
    for message in messages:
        content = message.get("content")
        if type(content) is list:
            message = {**message, "content": [write(part) for part in content]}
        out.append(message)
    return out


def to_responses(messages: list[Message]) -> list[Message]:
    """Responses input: ``input_text`` and ``input_image`` parts (assistant text: output_text)."""
    out = []
    for message in messages:
        content = message.get("content")
        if type(content) is list:
            text_kind = "output_text" if message.get("role") == "assistant" else "input_text"
            message = {**message, "content": [_responses_part(item, text_kind) for item in content]}
        out.append(message)
    return out


def _responses_part(item: Any, text_kind: str) -> Any:
    image = image_of(item)
    if image is not None:
        url = image.url or f"data:{image.media_type};base64,{image.data}"
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if is_text(item):
        return {"type": text_kind, "text": item["text"]}
    return item


def to_anthropic(messages: list[Message]) -> list[Message]:
    """Anthropic content blocks: ``image`` with a ``base64`` (or ``url``) source."""

    def write(part: Any) -> Any:
        image = image_of(part)
        if image is None:
            return part
        if image.url:
            return {"type": "image", "source": {"type": "url", "url": image.url}}
        source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        return {"type": "image", "source": source}

    return _mapped(messages, write)


def gemini_parts(content: Any, provider: str = "gemini") -> list[dict[str, Any]]:
    """Gemini parts of a message's content: ``{"text"}`` and ``{"inline_data"}``."""
    if type(content) is not list:
        return [{"text": content if type(content) is str else ""}]
    parts = []
    for item in content:
        image = image_of(item)
        if image is not None:
            inline = _inline(image, provider)
            parts.append({"inline_data": {"mime_type": image.media_type, "data": inline}})
        elif is_text(item):
            parts.append({"text": item["text"]})
        elif type(item) is dict and "type" not in item:
            parts.append(item)  # already a Gemini part
    return parts


def to_ollama(messages: list[Message]) -> list[Message]:
    """Ollama messages: the text as ``content``, the images as base64 strings in ``images``."""
    out = []
    for message in messages:
        content = message.get("content")
        if type(content) is not list:
            out.append(message)
            continue
        texts, images = [], []
        for item in content:
            image = image_of(item)
            if image is not None:
                images.append(_inline(image, "ollama"))
            elif is_text(item):
                texts.append(item["text"])
        rewritten = {**message, "content": "\n\n".join(texts)}
        if images:
            rewritten["images"] = [*rewritten.get("images", []), *images]
        out.append(rewritten)
    return out


def _inline(image: Image, provider: str) -> str:
    if image.url:
        raise ConfigurationError(
            f"{provider} takes images as bytes, not as a URL ({image.url[:60]}): "
            "download it and pass the file (--image PATH, images=[path])"
        )
    return image.data


def check_images(model: str) -> None:
    """Raise unless ``model`` may take images (by what its name says)."""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(TEXT_ONLY_MODELS):
        raise ConfigurationError(
            f"{model} takes text only: it cannot be sent images. Choose a model that sees "
            f"images (with -m), or leave the image out"
        )
