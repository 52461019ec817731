"""Bytes and messages a streaming ChatView sends to the browser, measured in a real kernel.

A kernel started through jupyter_client shows a ChatView fed a 20,000-character
LLM-style answer as 5,000 deltas at 100 deltas a second, as a fast model would
send it. Every iopub message the kernel publishes is collected and sized as its
JSON (header, parent, metadata and content: what the websocket carries). The
comparison is what re-sending the whole rendered HTML on every delta would cost,
one message per delta with the same envelope.

    python benchmarks/bench_view.py [--chars 20000] [--deltas 5000] [--rate 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_render import build_answer
from ipyllm.render import StreamingMarkdown

KERNEL_CODE = """
import asyncio, time
from ipyllm import ChatView
text = open({path!r}, encoding="utf-8").read()
size = -(-len(text) // {deltas})
pieces = [text[i:i + size] for i in range(0, len(text), size)]

async def source():
    start = time.monotonic()
    for n, piece in enumerate(pieces):
        await asyncio.sleep(max(0, start + n / {rate} - time.monotonic()))
        yield piece

view = ChatView()
view.display()
task = view.start(source())
"""


def message_size(message: dict) -> int:
    parts = {k: message[k] for k in ("header", "parent_header", "metadata", "content")}
    return len(json.dumps(parts, default=str))


def measure_in_kernel(text: str, deltas: int, rate: float) -> dict[str, float]:
    from jupyter_client.manager import start_new_kernel

    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as file:
        file.write(text)
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        quiet = {"output_hook": lambda message: None}  # the kernel's outputs are measured below
        client.execute_interactive("import ipyllm", timeout=60, **quiet)
        code = KERNEL_CODE.format(path=file.name, deltas=deltas, rate=rate)
        started = time.monotonic()
        client.execute_interactive(code, timeout=60, **quiet)
        messages: list[tuple[float, dict]] = []
        while True:
            message = client.get_iopub_msg(timeout=deltas / rate + 60)
            messages.append((time.monotonic(), message))
            if message["msg_type"] == "update_display_data":
                break  # the static copy replaces the view: the stream has ended
        elapsed = time.monotonic() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        Path(file.name).unlink()
    comm = [(at, m) for at, m in messages if m["msg_type"].startswith("comm")]
    per_second: dict[int, int] = {}
    for at, message in comm:
        if message["msg_type"] == "comm_msg":
            per_second[int(at - started)] = per_second.get(int(at - started), 0) + 1
    envelope = statistics.median(
        message_size(m) - len(json.dumps(m["content"]["data"])) for _, m in comm
    )
    return {
        "seconds": elapsed,
        "messages": len(comm),
        "bytes": sum(message_size(m) for _, m in comm),
        "static_bytes": message_size(messages[-1][1]),
        "busiest_second": max(per_second.values()),
        "envelope": envelope,
    }


def naive_bytes(text: str, deltas: int, envelope: float) -> int:
    """One message per delta carrying the whole HTML rendered so far."""
    size = -(-len(text) // deltas)
    renderer = StreamingMarkdown()
    total = 0
    for start in range(0, len(text), size):
        renderer.append(text[start : start + size])
        total += len(json.dumps({"method": "update", "state": {"value": renderer.html}}))
        total += int(envelope)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--deltas", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=100.0, help="deltas per second")
    args = parser.parse_args()
    text = build_answer(args.chars)[: args.chars]
    sent = measure_in_kernel(text, args.deltas, args.rate)
    naive = naive_bytes(text, args.deltas, sent["envelope"])
    print(f"{len(text)} characters as {args.deltas} deltas at {args.rate:g}/s, real kernel\n")
    print("| measure | ChatView | whole HTML per delta |\n|---|---:|---:|")
    print(f"| comm messages | {sent['messages']:.0f} | {args.deltas} |")
    print(f"| bytes over iopub | {sent['bytes'] / 1e6:.2f} MB | {naive / 1e6:.1f} MB |")
    print(f"| updates in the busiest second | {sent['busiest_second']:.0f} | {args.rate:.0f} |")
    print(f"\nChatView sends {naive / sent['bytes']:.0f}x fewer bytes;")
    print(f"the static copy that replaces it at the end is {sent['static_bytes'] / 1e3:.0f} kB;")
    print(f"stream shown in {sent['seconds']:.1f} s.")


if __name__ == "__main__":
    main()
