"""Images for a prompt, encoded once: files, bytes, figures, PIL and IPython images.

Each becomes one neutral ``image_url`` part (see ``ipyllm.dialects._content``) holding a
base64 data URL, which every dialect writes in its provider's form. The bytes of a file
are sent as they are (a JPEG stays that JPEG); a matplotlib figure is drawn once as PNG;
the media type always comes from the bytes' magic numbers, never from a file name. The
libraries are duck-typed: nothing is imported unless the value is one of theirs.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

from ..dialects import image_of
from ..errors import ConfigurationError

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # the largest image the providers take (OpenAI's limit)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def media_type_of(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg``, ``image/gif`` or ``image/webp`` by the magic numbers."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_image(value: Any) -> bool:
    """Whether a value is an image to send as one (not text to put into the prompt)."""
    kind = type(value)
    module = kind.__module__ or ""
    if callable(getattr(value, "savefig", None)) and hasattr(value, "canvas"):
        return True  # a matplotlib Figure
    if module.startswith("PIL.") and callable(getattr(value, "save", None)):
        return True  # a PIL Image
    if module.startswith("IPython.") and kind.__name__ == "Image":
        return True  # IPython.display.Image
    return callable(getattr(value, "_repr_png_", None)) and not isinstance(value, type)


def image_part(value: Any) -> dict[str, Any]:
    """The neutral part for one image: a path, bytes, a figure, a PIL or IPython image
    (an already encoded part is returned as it is)."""
    if isinstance(value, dict) and image_of(value) is not None:
        return value
    data = image_bytes(value)
    media_type = media_type_of(data)
    if media_type is None:
        raise ConfigurationError(
            f"{_describe(value)} is not a PNG, JPEG, GIF or WebP image (by its first bytes)"
        )
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigurationError(
            f"{_describe(value)} is {len(data) / 1e6:.1f} MB; providers take images of "
            f"at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB"
        )
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{encoded}"}}


def image_parts(values: list[Any] | None) -> list[dict[str, Any]]:
    """Parts for several images, each value encoded once even if given twice."""
    encoded: dict[int, dict[str, Any]] = {}
    for value in values or []:
        if id(value) not in encoded:
            encoded[id(value)] = image_part(value)
    return [encoded[id(value)] for value in values or []]


def image_bytes(value: Any) -> bytes:
    """The bytes to send for an image value."""
    if isinstance(value, str | os.PathLike):
        path = Path(value).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the image {os.fspath(value)!r}: {exc}") from None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    module = type(value).__module__ or ""
    if callable(getattr(value, "savefig", None)) and hasattr(value, "canvas"):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png")  # at the figure's own size and dpi
        return buffer.getvalue()
    if module.startswith("PIL.") and callable(getattr(value, "save", None)):
        buffer = io.BytesIO()
        if getattr(value, "format", None) == "JPEG" and getattr(value, "mode", "") in ("RGB", "L"):
            value.save(buffer, format="JPEG", quality=95)  # a photo stays a JPEG
        else:
            value.save(buffer, format="PNG")
        return buffer.getvalue()
    if module.startswith("IPython.") and type(value).__name__ == "Image":
        data = getattr(value, "data", None)
        if isinstance(data, bytes):
            return data
        filename = getattr(value, "filename", None)
        if filename:
            return image_bytes(filename)
        raise ConfigurationError(
            "this IPython Image holds a URL, not bytes: make it with embed=True, or pass a file"
        )
    represent = getattr(value, "_repr_png_", None)
    if callable(represent):
        png = represent()
        if isinstance(png, str):
            png = base64.b64decode(png)
        if isinstance(png, bytes):
            return png
    raise ConfigurationError(
        f"cannot send a {type(value).__name__} as an image: give a file path, bytes, a "
        "matplotlib Figure, a PIL Image or an IPython Image"
    )


def _describe(value: Any) -> str:
    if isinstance(value, str | os.PathLike):
        return repr(os.fspath(value))
    return f"the {type(value).__name__}"
