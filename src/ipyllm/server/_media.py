"""Images a request carries, as the teaching server reads them: media type and pixel size
from the bytes' own headers (PNG, JPEG, GIF, WebP), in pure Python."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from ipyllm.server._formats import RequestError

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*?;base64,(?P<data>.*)", re.S)
# JPEG markers that start a frame and carry its size (SOF0-SOF15 but DHT, JPG and DAC).
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class Picture:
    """One image of a request: what its bytes are, and their size in pixels."""

    media_type: str
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.media_type} {self.width}×{self.height}"


def read_picture(data: bytes) -> Picture | None:
    """The media type and size of PNG, JPEG, GIF or WebP bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return Picture("image/png", width, height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return Picture("image/gif", width, height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def _jpeg(data: bytes) -> Picture | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return Picture("image/jpeg", width, height)
        at += 2 + length
    return None


def _webp(data: bytes) -> Picture | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return Picture("image/webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return Picture("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return Picture("image/webp", width, height)
    return None


def picture_of(encoded: str, declared: str | None, where: str) -> Picture:
    """The picture in base64 ``encoded``, checked against its ``declared`` media type, as a
    provider checks it (a 400 that names ``where`` when it is not an image, or not that)."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where}: the image data is not valid base64") from None
    picture = read_picture(data)
    if picture is None:
        raise RequestError(f"{where}: the image is not a PNG, JPEG, GIF or WebP image")
    if declared and declared.lower() != picture.media_type:
        raise RequestError(
            f"{where}: the image is {picture.media_type}, not the {declared} it is declared as"
        )
    return picture


def picture_of_url(url: str, where: str) -> Picture:
    """The picture in a data URL; an http(s) URL cannot be fetched by this offline server."""
    inline = _DATA_URL.fullmatch(url)
    if inline is None:
        raise RequestError(
            f"{where}: this teaching server has no network, so it takes images as data URLs "
            f"(data:image/png;base64,...), not {url[:40]!r}"
        )
    return picture_of(inline["data"], inline["type"], where)


def images_line(pictures: tuple[Picture, ...] | list[Picture]) -> str:
    """What the demo model says of the images it was sent (nothing when there are none)."""
    if not pictures:
        return ""
    count = "1 image" if len(pictures) == 1 else f"{len(pictures)} images"
    return f"*{count} received: {', '.join(map(str, pictures))}.*\n\n"
