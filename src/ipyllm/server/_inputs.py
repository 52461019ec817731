"""What a request carries beside its text, read in each provider's own request format:
the images (``_media`` reads their headers) and the schema a structured answer must fit.

Images: Chat Completions ``image_url`` parts (data URLs), Responses ``input_image``
parts, Anthropic ``image`` blocks with a base64 ``source``, Gemini ``inline_data`` parts,
Ollama's ``images`` list of base64 strings on a message (or on a generate request).
Schemas: Chat ``response_format``, Responses ``text.format``, Anthropic's forced tool
(whose input is the answer), Gemini ``generationConfig.responseJsonSchema`` or
``responseSchema``, Ollama ``format``. A JSON mode without a schema gets a small one.
"""

from __future__ import annotations

from typing import Any

from ipyllm.server._formats import RequestError
from ipyllm.server._media import Picture, picture_of, picture_of_url

Schema = dict[str, Any]
# What "any JSON object" (OpenAI's json_object, Ollama's "json") is answered with.
JSON_MODE: Schema = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _url_of(part: dict[str, Any], key: str) -> str:
    value = part.get(key)
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise RequestError(f"'{key}' must be a URL string or an object with a 'url'")
    return url


# -- images ------------------------------------------------------------------------------


def chat_images(messages: Any, key: str = "messages") -> list[Picture]:
    """Chat Completions: ``{"type": "image_url", "image_url": {"url": "data:..."}}``."""
    found = []
    for m, message in enumerate(_dicts(messages)):
        for p, part in enumerate(_dicts(message.get("content"))):
            if part.get("type") == "image_url":
                where = f"{key}[{m}].content[{p}]"
                found.append(picture_of_url(_url_of(part, "image_url"), where))
    return found


def responses_images(given: Any) -> list[Picture]:
    """Responses: ``{"type": "input_image", "image_url": "data:..."}`` in input messages."""
    found = []
    for m, message in enumerate(_dicts(given)):
        for p, part in enumerate(_dicts(message.get("content"))):
            if part.get("type") == "input_image":
                found.append(picture_of_url(_url_of(part, "image_url"), f"input[{m}].content[{p}]"))
            elif part.get("type") == "image_url":
                raise RequestError(
                    f"input[{m}].content[{p}]: the Responses API takes images as "
                    "'input_image' parts, not 'image_url'"
                )
    return found


def anthropic_images(messages: Any) -> list[Picture]:
    """Anthropic: ``{"type": "image", "source": {"type": "base64", "media_type", "data"}}``."""
    found = []
    for m, message in enumerate(_dicts(messages)):
        for p, block in enumerate(_dicts(message.get("content"))):
            where = f"messages.{m}.content.{p}"
            if block.get("type") == "image_url":
                raise RequestError(f"{where}: Anthropic takes 'image' blocks, not 'image_url'")
            if block.get("type") != "image":
                continue
            source = block.get("source")
            if not isinstance(source, dict) or source.get("type") != "base64":
                raise RequestError(f"{where}.source: this server takes base64 sources only")
            media_type = source.get("media_type")
            if not isinstance(media_type, str) or not isinstance(source.get("data"), str):
                raise RequestError(f"{where}.source: 'media_type' and 'data' are required")
            found.append(picture_of(source["data"], media_type, f"{where}.source"))
    return found


def gemini_images(contents: Any) -> list[Picture]:
    """Gemini: ``{"inline_data": {"mime_type", "data"}}`` parts (or camelCase)."""
    found = []
    for c, content in enumerate(_dicts(contents)):
        for p, part in enumerate(_dicts(content.get("parts"))):
            inline = part.get("inline_data", part.get("inlineData"))
            if inline is None:
                continue
            where = f"contents[{c}].parts[{p}].inline_data"
            if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
                raise RequestError(f"{where}: 'data' (base64) is required")
            declared = inline.get("mime_type", inline.get("mimeType"))
            found.append(picture_of(inline["data"], declared, where))
    return found


def ollama_images(messages: Any) -> list[Picture]:
    """Ollama: a message's ``images``, a list of base64 strings (no media type given)."""
    found = []
    for m, message in enumerate(_dicts(messages)):
        images = message.get("images") or []
        if not isinstance(images, list):
            raise RequestError(f"messages[{m}].images must be a list of base64 strings")
        for i, encoded in enumerate(images):
            if not isinstance(encoded, str):
                raise RequestError(f"messages[{m}].images[{i}] must be a base64 string")
            found.append(picture_of(encoded, None, f"messages[{m}].images[{i}]"))
    return found


# -- schemas -----------------------------------------------------------------------------


def chat_schema(payload: dict[str, Any]) -> Schema | None:
    answer_format = payload.get("response_format")
    if not isinstance(answer_format, dict):
        return None
    kind = answer_format.get("type")
    if kind == "json_object":
        return JSON_MODE
    if kind != "json_schema":
        return None
    spec = answer_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RequestError("Missing required parameter: 'response_format.json_schema.name'.")
    return _schema(spec.get("schema"), "response_format.json_schema.schema")


def responses_schema(payload: dict[str, Any]) -> Schema | None:
    text = payload.get("text")
    answer_format = text.get("format") if isinstance(text, dict) else None
    if not isinstance(answer_format, dict):
        return None
    if answer_format.get("type") == "json_object":
        return JSON_MODE
    if answer_format.get("type") != "json_schema":
        return None
    if not isinstance(answer_format.get("name"), str):
        raise RequestError("Missing required parameter: 'text.format.name'.")
    return _schema(answer_format.get("schema"), "text.format.schema")


def anthropic_tool(payload: dict[str, Any]) -> tuple[str, Schema] | None:
    """The forced tool (``tool_choice`` of type ``tool``, or ``any`` with one tool)."""
    choice = payload.get("tool_choice")
    tools = _dicts(payload.get("tools"))
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        name = choice.get("name")
    elif choice.get("type") == "any" and len(tools) == 1:
        name = tools[0].get("name")
    else:
        return None
    tool = next((tool for tool in tools if tool.get("name") == name), None)
    if tool is None or not isinstance(name, str):
        raise RequestError(f"tool_choice names a tool that is not in 'tools': {name!r}")
    return name, _schema(tool.get("input_schema"), f"tools.{name}.input_schema")


def gemini_schema(payload: dict[str, Any]) -> Schema | None:
    config = payload.get("generationConfig", payload.get("generation_config"))
    if not isinstance(config, dict):
        return None
    for key in ("responseJsonSchema", "response_json_schema", "responseSchema", "response_schema"):
        if key in config:
            return _schema(config[key], f"generationConfig.{key}")
    mime = config.get("responseMimeType", config.get("response_mime_type"))
    return JSON_MODE if mime == "application/json" else None


def ollama_schema(payload: dict[str, Any]) -> Schema | None:
    given = payload.get("format")
    if given in (None, ""):
        return None
    if given == "json":
        return JSON_MODE
    return _schema(given, "format")


def _schema(value: Any, where: str) -> Schema:
    if not isinstance(value, dict):
        raise RequestError(f"'{where}' must be a JSON Schema object")
    return value
