"""Images in prompts: each provider's own request form, as the teaching server receives it;
figures, files, PIL and IPython images encoded once; refusals before anything is sent;
history that resends images within the budget; one copy of each image in the store."""

from __future__ import annotations

import base64
import io
import sqlite3
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import ipyllm
from ipyllm.client import image_parts
from ipyllm.client.store import Store
from ipyllm.conversation import IMAGE_TOKENS, Session, Turn, history_messages, message_tokens
from ipyllm.events import TextDelta
from ipyllm.server import TeachingServer

from .conftest import base_url_for

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402 - after choosing the backend

Image = pytest.importorskip("PIL.Image")

FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
PROVIDERS = ["openai", "openai-responses", "anthropic", "gemini", "ollama"]


def png(width: int, height: int) -> bytes:
    """A PNG made by hand: the server must read its size from the header alone."""
    rows = b"".join(b"\x00" + b"\x10\x80\xf0" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def figure(width_in: float = 4, height_in: float = 3, dpi: int = 50) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    fig.add_subplot().plot([1, 3, 2])
    return fig


@pytest.fixture
def jpeg_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (31, 17), (200, 30, 30)).save(path, format="JPEG", quality=80)
    return path


@pytest.fixture
async def kept() -> AsyncIterator[TeachingServer]:
    """A teaching server that keeps request bodies (never headers)."""
    async with TeachingServer(token_rate=0, first_token_latency=0, keep_bodies=True) as server:
        yield server


def decoded(data: str) -> bytes:
    return base64.b64decode(data.partition(";base64,")[2] if data.startswith("data:") else data)


def last_user(body: dict[str, Any], provider: str) -> Any:
    """Where each API keeps the last user message of a request."""
    if provider == "gemini":
        return body["contents"][-1]
    return body["input" if provider == "openai-responses" else "messages"][-1]


# -- each provider's own form --------------------------------------------------------------


def expected_shape(provider: str, fig_png: str, jpeg: str, prompt: str) -> Any:
    """The documented form of one user message holding a PNG, a JPEG and the text."""
    if provider == "openai":
        return {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{fig_png}"}},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{jpeg}"}},
                {"type": "text", "text": prompt},
            ],
        }
    if provider == "openai-responses":
        return {
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": f"data:image/png;base64,{fig_png}",
                 "detail": "auto"},
                {"type": "input_image", "image_url": f"data:image/jpeg;base64,{jpeg}",
                 "detail": "auto"},
                {"type": "input_text", "text": prompt},
            ],
        }  # fmt: skip
    if provider == "anthropic":
        return {
            "role": "user",
            "content": [
                {"type": "image",
                 "source": {"type": "base64", "media_type": "image/png", "data": fig_png}},
                {"type": "image",
                 "source": {"type": "base64", "media_type": "image/jpeg", "data": jpeg}},
                {"type": "text", "text": prompt},
            ],
        }  # fmt: skip
    if provider == "gemini":
        return {
            "role": "user",
            "parts": [
                {"inline_data": {"mime_type": "image/png", "data": fig_png}},
                {"inline_data": {"mime_type": "image/jpeg", "data": jpeg}},
                {"text": prompt},
            ],
        }
    return {"role": "user", "content": prompt, "images": [fig_png, jpeg]}  # Ollama


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_provider_receives_a_figure_and_a_file_in_its_documented_form(
    kept: TeachingServer, provider: str, jpeg_file: Path
) -> None:
    prompt = "What do these show?"
    transcript = await ipyllm.achat(
        prompt,
        provider=provider,
        base_url=base_url_for(kept.url, provider),
        api_key="sk-test-images",
        images=[figure(), jpeg_file],
    )
    message = last_user(kept.app.last_body, provider)
    images = (
        message["images"]
        if provider == "ollama"
        else [
            part.get("image_url") or part.get("source", {}).get("data")
            or part.get("inline_data", {}).get("data")
            for part in message.get("content") or message.get("parts")
            if "text" not in part
        ]
    )  # fmt: skip
    if provider == "openai":
        images = [image["url"] for image in images]
    fig_png = base64.b64encode(decoded(images[0])).decode()
    jpeg = base64.b64encode(jpeg_file.read_bytes()).decode()
    assert message == expected_shape(provider, fig_png, jpeg, prompt)
    assert decoded(images[1]) == jpeg_file.read_bytes()  # a file's bytes, as they are
    # The demo answer reads each image's own header: 4 x 3 inches at 50 dpi.
    assert transcript.text.startswith(
        "*2 images received: image/png 200×150, image/jpeg 31×17.*"
    ), transcript.text[:80]


async def test_a_matplotlib_figure_round_trips_with_its_pixel_size() -> None:
    transcript = await ipyllm.achat(
        "Describe the chart",
        provider="demo",
        base_url=FAST_DEMO,
        images=[figure(3.2, 2.4, dpi=100)],
    )
    assert transcript.text.startswith("*1 image received: image/png 320×240.*")


async def test_pil_ipython_and_bytes_images_are_sent_as_images() -> None:
    from IPython.display import Image as IPythonImage

    pil = Image.new("RGBA", (9, 4))
    photo = Image.open(io.BytesIO(_jpeg_bytes(12, 10)))  # a JPEG stays a JPEG
    values = [pil, photo, IPythonImage(data=png(5, 6)), png(2, 3)]
    transcript = await ipyllm.achat("Look", provider="demo", base_url=FAST_DEMO, images=values)
    assert transcript.text.startswith(
        "*4 images received: image/png 9×4, image/jpeg 12×10, image/png 5×6, image/png 2×3.*"
    )


def _jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 90, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def test_a_prompt_naming_a_figure_twice_encodes_and_sends_it_once() -> None:
    from ipyllm.conversation import fill

    fig = figure()
    filled = fill("Compare {fig} with {fig} and {other}", {"fig": fig, "other": figure(1, 1)})
    assert filled.text == "Compare [image 1] with [image 1] and [image 2]"
    assert len(filled.images) == 2
    transcript = await ipyllm.achat(
        filled.text, provider="demo", base_url=FAST_DEMO, images=filled.images
    )
    assert transcript.text.startswith("*2 images received: image/png 200×150, image/png 50×50.*")


# -- refused before anything is sent -------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "says"),
    [
        ("openai-completions", None, "takes text only"),
        ("openai", "gpt-3.5-turbo", "gpt-3.5-turbo takes text only"),
        ("anthropic", "claude-2.1", "claude-2.1 takes text only"),
    ],
)
async def test_an_api_or_model_that_takes_text_only_refuses_images_before_sending(
    kept: TeachingServer, provider: str, model: str | None, says: str
) -> None:
    with pytest.raises(ipyllm.ConfigurationError, match=says):
        ipyllm.stream(
            "Look",
            provider=provider,
            model=model,
            base_url=base_url_for(kept.url, provider),
            api_key="sk-test",
            images=[png(1, 1)],
        )
    assert kept.app.log == []  # nothing reached the server


def test_what_is_not_an_image_is_refused_with_its_name(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with pytest.raises(ipyllm.ConfigurationError, match=r"notes\.txt' is not a PNG, JPEG"):
        ipyllm.stream("Look", provider="demo", base_url=FAST_DEMO, images=[notes])
    with pytest.raises(ipyllm.ConfigurationError, match="cannot read the image"):
        ipyllm.stream(
            "Look", provider="demo", base_url=FAST_DEMO, images=[tmp_path / "missing.png"]
        )
    with pytest.raises(ipyllm.ConfigurationError, match="cannot send a dict as an image"):
        ipyllm.stream("Look", provider="demo", base_url=FAST_DEMO, images=[{"not": "an image"}])


async def test_the_teaching_server_checks_a_declared_media_type(kept: TeachingServer) -> None:
    # A provider's own block passes through unchanged; the server checks it as Anthropic does.
    block = {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/jpeg",
            "data": base64.b64encode(png(3, 3)).decode(),
        },
    }
    messages = [{"role": "user", "content": [block, {"type": "text", "text": "Hi"}]}]
    with pytest.raises(ipyllm.HTTPStatusError, match="image/png, not the image/jpeg") as caught:
        await ipyllm.achat(
            messages, provider="anthropic", base_url=kept.url, api_key="sk-test", max_retries=0
        )
    assert caught.value.status_code == 400


# -- history and the store -------------------------------------------------------------------


def test_history_resends_images_and_counts_each_at_a_fixed_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    transcript = ipyllm.Transcript(provider="demo", model="demo")
    transcript.start()
    transcript.apply(TextDelta("A red square."))
    transcript.end("done")
    earlier = [Turn("Describe it", transcript, images=[image])]
    messages, dropped = history_messages(earlier, None, "Bigger?", budget=10_000)
    assert dropped == 0
    assert messages[0] == {
        "role": "user",
        "content": [image, {"type": "text", "text": "Describe it"}],
    }
    assert message_tokens(messages[0]["content"]) == IMAGE_TOKENS + 6
    # a budget without room for the earlier image leaves that turn out, the new one stays
    messages, dropped = history_messages(earlier, None, "Bigger?", budget=IMAGE_TOKENS // 2)
    assert dropped == 1 and messages == [{"role": "user", "content": "Bigger?"}]


async def test_the_store_keeps_an_image_once_across_turns_that_resend_it(
    kept: TeachingServer, tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite3"
    base_url = base_url_for(kept.url, "anthropic")
    session = Session("pictures")
    fig_parts = image_parts([figure()])
    prompts = ["What is in this chart?", "And its trend?", "Summarise both answers"]
    for number, prompt in enumerate(prompts):
        images = fig_parts if number == 0 else []
        messages, dropped = history_messages(
            session.turns, None, prompt, budget=100_000, images=images
        )
        assert dropped == 0
        transcript = await ipyllm.achat(
            messages,
            provider="anthropic",
            base_url=base_url,
            api_key="sk-test",
            record=True,
            store=store_path,
        )
        session.put(number, Turn(prompt, transcript, images=images))
    # Every request resent the image (history), in Anthropic's form.
    payload = fig_parts[0]["image_url"]["url"].partition(";base64,")[2]
    for kept_request in kept.app.bodies:
        first = kept_request["body"]["messages"][0]["content"][0]
        assert first["source"]["data"] == payload
    store = Store(store_path)
    assert store.count_exchanges() == 3
    assert store.count_images() == 1
    database = sqlite3.connect(store_path)
    rows = database.execute("SELECT request, transcript FROM exchanges").fetchall()
    stored = [request + record for request, record in rows]
    assert all(payload not in text for text in stored)  # only references to it
    assert all("ipyllm-image:sha256:" in text for text in stored)
    (reference,) = {line for text in stored for line in _references(text)}
    media_type, data = store.load_image(reference) or ("", b"")
    assert media_type == "image/png" and base64.b64encode(data).decode() == payload
    # and a recorded exchange with images replays by its request
    first_turn = [{"role": "user", "content": [*fig_parts, {"type": "text", "text": prompts[0]}]}]
    again = await ipyllm.achat(
        first_turn, provider="anthropic", base_url=base_url, replay=True, store=store_path
    )
    assert again.text == session.turns[0].transcript.text
    assert len(kept.app.bodies) == 3  # replayed: nothing sent


def _references(text: str) -> list[str]:
    import re

    return re.findall(r"ipyllm-image:sha256:[0-9a-f]{64}", text)
