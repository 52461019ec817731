"""Load on one real kernel: many concurrent %%chat streams, then many short ones in a row.

The full-size version of tests/test_load.py, with the same helpers: one kernel
(JPY_SESSION_NAME set, so %%chat streams in the background) against the teaching
server in this process. It measures a trivial cell's round trip idle, while 10 and
while 50 streams run at a model's pace, checks every answer against the demo model,
and compares what the kernel holds (connections to the server, sockets, asyncio
tasks, comms, widgets, RSS) before and after. Prints markdown tables.

    python benchmarks/bench_load.py [--concurrent 50] [--rate 30] [--words 150]
                                    [--sequential 500] [--kernel python3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the helpers are the test suite's own

from tests.kernels import Kernel, running_kernel  # noqa: E402
from tests.test_load import (  # noqa: E402
    COUNTS,
    Started,
    check_answer,
    prepare,
    probe,
    round_trip,
    server_records,
    settled,
    start_chat,
)

from ipyllm.server import ServerThread  # noqa: E402


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms (max {max(values) * 1000:.1f})"


def concurrent(kernel: Kernel, server: ServerThread, count: int, rate: float, words: int,
               samples: int) -> tuple[list[float], dict[str, float], float]:  # fmt: skip
    """Start ``count`` streams, time trivial cells while they run, check every answer."""
    started_at = time.monotonic()
    running: list[Started] = [
        start_chat(kernel, server, f"Load question {count}-{n}", f"rate={rate}", words)
        for n in range(count)
    ]
    busy = [round_trip(kernel) for _ in range(samples)]
    during = probe(kernel, server)
    for started in running:
        check_answer(kernel, started, timeout=600)
    return busy, during, time.monotonic() - started_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--rate", type=float, default=30, help="tokens per second per stream")
    parser.add_argument("--words", type=int, default=150, help="length of concurrent answers")
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args()

    with (
        ServerThread(token_rate=args.rate, first_token_latency=0.2) as server,
        running_kernel(args.kernel, JPY_SESSION_NAME="bench_load.ipynb") as kernel,
    ):
        baseline = prepare(kernel, server)
        idle = [round_trip(kernel) for _ in range(20)]
        busy10, during10, seconds10 = concurrent(kernel, server, 10, args.rate, args.words, 20)
        busy_n, during_n, seconds_n = concurrent(
            kernel, server, args.concurrent, args.rate, args.words, 20
        )
        started = time.monotonic()
        for n in range(args.sequential):
            check_answer(kernel, start_chat(kernel, server, f"Short {n}", "rate=0,latency=0", 20))
        sequential = time.monotonic() - started
        after = settled(kernel, server, baseline)
        requests, complete, other = server_records(server)

    print(
        f"## Load on one kernel ({args.kernel}), {args.rate:g} tok/s, {args.words}-word answers\n"
    )
    print("| phase | answers | wall time | trivial cell round trip |")
    print("|---|---:|---:|---:|")
    print(f"| idle | | | {ms(idle)} |")
    print(f"| 10 concurrent | 10/10 right | {seconds10:.1f} s | {ms(busy10)} |")
    print(f"| {args.concurrent} concurrent | {args.concurrent}/{args.concurrent} right "
          f"| {seconds_n:.1f} s | {ms(busy_n)} |")  # fmt: skip
    print(f"| {args.sequential} sequential (20 words, unpaced) | {args.sequential}/"
          f"{args.sequential} right | {sequential:.1f} s "
          f"({sequential / args.sequential * 1000:.0f} ms each) | |\n")  # fmt: skip
    print("| kernel holds | before | with 10 streams | "
          f"with {args.concurrent} streams | after |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for key in (*COUNTS, "rss_mb"):
        row = [baseline[key], during10[key], during_n[key], after[key]]
        print(f"| {key} | " + " | ".join(f"{v:g}" for v in row) + " |")
    growth = after["rss_mb"] - baseline["rss_mb"]
    total = 1 + 10 + args.concurrent + args.sequential
    print(f"\nRSS growth: {growth:+.1f} MB over {total} answers "
          f"({growth * 1024 / total:.1f} KB per answer, history included).")  # fmt: skip
    print(f"Server: {requests} requests, {complete} complete, {other} dropped or disconnected.")
    back = all(after[k] == baseline[k] for k in COUNTS)
    print(f"Counts back to baseline: {'yes' if back else 'NO'}.")
    if not back or other or complete != requests:
        sys.exit(1)


if __name__ == "__main__":
    main()
