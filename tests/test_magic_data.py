"""%%chat with data in the prompt and data out, in a real kernel: {df} as a bounded table,
{fig} and --image as images (resent as history), --schema NAME for a structured answer."""

from __future__ import annotations

import ast
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipyllm.server import ServerThread

from .kernels import Kernel, running_kernel

pytestmark = pytest.mark.timeout(300)
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")
pytest.importorskip("pydantic")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0, keep_bodies=True) as running:
        yield running


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with running_kernel("python3", JPY_SESSION_NAME="data.ipynb") as running:
        running.run(
            "import matplotlib; matplotlib.use('Agg')\n"
            "from matplotlib.figure import Figure\n"
            "import pandas as pd, pydantic\n"
            "fig = Figure(figsize=(2, 1), dpi=60)\n"
            "fig.add_subplot().bar(['a', 'b'], [3, 5])\n"
            "df = pd.DataFrame({'n': range(10_000), 'sq': [n * n for n in range(10_000)]})\n"
            "class Verdict(pydantic.BaseModel):\n"
            "    label: str\n"
            "    score: int\n"
        )
        yield running


def cell(server: ServerThread, prompt: str, flags: str = "") -> str:
    return f"%%chat -p anthropic --base-url {server.url} --wait {flags}\n{prompt}"


def value(kernel: Kernel, expression: str) -> Any:
    return ast.literal_eval(kernel.evaluate(expression))


def png(path: Path) -> Path:
    import struct
    import zlib

    rows = b"".join(b"\x00\x00\x00\x00" * 1 for _ in range(2))
    header = struct.pack(">IIBBBBB", 1, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    return path


def test_a_frame_is_sent_as_a_table_within_the_budget(kernel: Kernel, server: ServerThread) -> None:
    kernel.run(cell(server, "Describe {df}", "--session frames"))
    sent = server.app.last_body["messages"][-1]["content"]
    assert sent.startswith("Describe |  | n | sq |")
    assert (
        "(A table of 10,000 rows × 2 columns; rows 11 to 9,990 (9,980 rows) are left out)" in sent
    )
    kernel.run("%config Chat.table_rows = 4")
    try:
        kernel.run(cell(server, "Describe {df} again", "--session frames --no-history"))
    finally:
        kernel.run("%config Chat.table_rows = 20")
    again = server.app.last_body["messages"][-1]["content"]
    assert again.count("\n| ") == 4 + 1  # four rows and the gap
    assert "rows 3 to 9,998 (9,996 rows) are left out" in again


def test_figures_and_image_files_are_sent_and_resent_as_history(
    kernel: Kernel, server: ServerThread, tmp_path: Path
) -> None:
    picture = png(tmp_path / "tiny.png")
    kernel.run(cell(server, "Compare {fig} with this", f"--session pics --image {picture}"))
    first = server.app.last_body["messages"][-1]["content"]
    kinds = [(block["type"], block.get("source", {}).get("media_type")) for block in first]
    assert kinds == [("image", "image/png"), ("image", "image/png"), ("text", None)]
    assert first[-1]["text"] == "Compare [image 1] with this"
    assert base64.b64decode(first[1]["source"]["data"]) == picture.read_bytes()
    answer = value(kernel, "__import__('ipyllm').last.text")
    assert answer.startswith("*2 images received: image/png 120×60, image/png 1×2.*")
    # The next turn resends both images with the first prompt, as Anthropic requires.
    kernel.run(cell(server, "And the colours?", "--session pics"))
    history = server.app.last_body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[0]["content"] == first and history[2]["content"] == "And the colours?"


def test_a_schema_named_in_the_cell_gives_the_model_instance(
    kernel: Kernel, server: ServerThread
) -> None:
    kernel.run(cell(server, "Judge it", "--no-history --schema Verdict -o verdict"))
    assert server.app.last_body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    assert kernel.evaluate("type(verdict.transcript.parsed).__name__") == "'Verdict'"
    assert value(kernel, "verdict.transcript.parsed.label") == "demo label"
    reply, _ = kernel.execute(cell(server, "Judge it", "--schema Missing"))
    said = str(reply["content"]) + str(kernel.outputs_of(reply, "stream"))
    assert "--schema Missing: there is no variable named 'Missing'" in said
