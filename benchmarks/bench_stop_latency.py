"""How fast Stop really stops: from a click to the server seeing the connection close.

One kernel (JPY_SESSION_NAME set, so %%chat streams in the background) and one
teaching server pacing tokens at 20 a second. Each run starts a long answer, waits
until its first text is on screen, then sends the Stop button's click as a browser
does (a comm_msg on the shell channel) and times two things: until the teaching
server logs the disconnect (generation and billing stop there) and until the
frontend receives the static "stopped" copy. Both clocks are this process's: the
server runs in a thread here. Prints a markdown table.

    python benchmarks/bench_stop_latency.py [--runs 100] [--kernel python3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the kernel driver is the test suite's own

from tests.kernels import Kernel, running_kernel  # noqa: E402

from ipyllm.server import ServerThread  # noqa: E402


def one_stop(kernel: Kernel, server: ServerThread, run: int) -> tuple[float, float]:
    """(click to server disconnect, click to the frontend's stopped copy), in seconds."""
    with kernel._lock:
        kernel.messages.clear()  # each run searches only its own messages
    options = f"rate=20,latency=0,words=300,seed={run}"  # seed: a path of its own
    reply = kernel.run(
        f"%%chat -p openai --base-url {server.url}/with/{options}/v1 --no-history\nStop {run}"
    )
    (display_id,) = kernel.display_ids(reply)
    # Mid-flight: the first text has reached the page.
    kernel.wait_for(lambda m: m["msg_type"] == "comm_msg" and "<h2" in str(m["content"]))
    request = server.app.wait_for(
        lambda r: r["event"] == "request" and f"/with/{options}/" in r["path"], 5
    )
    assert request is not None
    button = kernel.stop_buttons()[-1]
    clicked_wall, clicked = time.time(), time.monotonic()
    kernel.click(button)
    gone = server.app.wait_for(lambda r: r["id"] == request["id"] and r["event"] != "request", 10)
    assert gone is not None and gone["event"] == "disconnect", gone
    # The static copy marked "stopped": the fallback beside the live view, or what replaces it.
    final = kernel.final_display(display_id)
    with kernel._lock:
        shown = next(at for at, m in kernel.messages if m is final)
    assert "stopped" in str(final["content"]["data"]["text/plain"])
    return gone["time"] - clicked_wall, shown - clicked


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (
        f"| {name} | {statistics.median(values) * 1000:.1f} ms | {p90 * 1000:.1f} ms "
        f"| {max(values) * 1000:.1f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args()
    started = time.monotonic()
    with (
        ServerThread(token_rate=20, first_token_latency=0) as server,
        running_kernel(args.kernel, JPY_SESSION_NAME="bench_stop.ipynb") as kernel,
    ):
        results = [one_stop(kernel, server, run) for run in range(args.runs)]
    to_server = [r[0] for r in results]
    to_page = [r[1] for r in results]
    print(f"## Stop latency ({args.kernel}, {args.runs} runs, streams at 20 tok/s)\n")
    print("| from the click to | median | p90 | worst |")
    print("|---|---:|---:|---:|")
    print(row("the server logging the disconnect", to_server))
    print(row("the frontend receiving the stopped copy", to_page))
    print(f"\n{args.runs} runs in {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
