"""Many streams in one real kernel: every answer right, and nothing left behind.

Concurrent %%chat cells at a model's pace, then short ones one after another, in one
kernel against the teaching server. Every answer must equal the demo model's, the
kernel must keep answering a trivial cell while the streams run, and afterwards what
a stream holds must be back to where it was: the kernel's connections to the server
(its socket inodes matched against /proc/net/tcp), its open sockets, live asyncio
tasks, open comms and live widgets; every request the server logged has completed,
and memory grew by a bounded amount. benchmarks/bench_load.py runs the full size
(50 concurrent, 500 sequential) with the same helpers and prints the figures.
"""

from __future__ import annotations

import ast
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ipyllm.server import ServerThread, demo_answer

from .kernels import Kernel, running_kernel

pytestmark = pytest.mark.timeout(120)

# Runs in the kernel: what a stream could leave behind, counted.
PROBE = r"""
def __ipyllm_probe(port):
    import asyncio, gc, os
    gc.collect()
    inodes = set()
    sockets = 0
    for fd in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            continue  # closed since listdir
        if target.startswith('socket:['):
            sockets += 1
            inodes.add(target[8:-1])
    to_server = 0
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[2].rsplit(':', 1)[1], 16) == port and fields[9] in inodes:
                to_server += 1
    try:
        import comm
        comms = len(comm.get_comm_manager().comms)
    except (ImportError, AttributeError):  # ipykernel 6 before the comm package
        comms = len(get_ipython().kernel.comm_manager.comms)
    import ipywidgets.widgets.widget as w
    live = getattr(w, '_instances', None)
    widgets = len(live if live is not None else w.Widget.widgets)  # 8.x, 7.x
    rss_kb = next(
        int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmRSS:')
    )
    return {
        'connections': to_server, 'sockets': sockets, 'tasks': len(asyncio.all_tasks()),
        'comms': comms, 'widgets': widgets, 'rss_mb': round(rss_kb / 1024, 1),
    }
"""
COUNTS = ("connections", "sockets", "tasks", "comms", "widgets")


def ask(prompt: str, words: int) -> str:
    return demo_answer([{"role": "user", "content": prompt}], words=words)


def probe(kernel: Kernel, server: ServerThread) -> dict[str, float]:
    value = ast.literal_eval(kernel.evaluate(f"__ipyllm_probe({server.server.port})"))
    assert isinstance(value, dict)
    return value


def settled(kernel: Kernel, server: ServerThread, baseline: dict[str, float],
            timeout: float = 15) -> dict[str, float]:  # fmt: skip
    """The counts once they are back to the baseline (closing takes a moment), or as they stay."""
    deadline = time.monotonic() + timeout
    while True:
        now = probe(kernel, server)
        if all(now[k] == baseline[k] for k in COUNTS) or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def round_trip(kernel: Kernel) -> float:
    """Seconds from sending a trivial cell to its reply."""
    sent = time.monotonic()
    reply, replied = kernel.execute("1+1")
    assert reply["content"]["status"] == "ok"
    return replied - sent


@dataclass
class Started:
    prompt: str
    words: int
    display_id: str


def start_chat(kernel: Kernel, server: ServerThread, prompt: str, options: str,
               words: int) -> Started:  # fmt: skip
    base = f"{server.url}/with/{options},words={words}/v1"
    reply = kernel.run(f"%%chat -p openai --base-url {base} --no-history\n{prompt}")
    (display_id,) = kernel.display_ids(reply)
    return Started(prompt, words, display_id)


def check_answer(kernel: Kernel, started: Started, timeout: float = 120) -> None:
    """The static copy that replaces the view holds the whole, exact answer, done."""
    final = kernel.final_display(started.display_id, timeout)["content"]
    assert final["metadata"]["ipyllm"]["status"] == "done", final["data"]["text/plain"][:300]
    status, _, text = final["data"]["text/plain"].partition("\n\n")
    assert text == ask(started.prompt, started.words), status


def server_records(server: ServerThread) -> tuple[int, int, int]:
    """Requests, completed answers, and any that ended otherwise (dropped, disconnected)."""
    log = server.app.log
    requests = sum(r["event"] == "request" for r in log)
    complete = sum(r["event"] == "complete" for r in log)
    return requests, complete, sum(r["event"] in ("disconnect", "drop") for r in log)


def prepare(kernel: Kernel, server: ServerThread) -> dict[str, float]:
    """Define the probe, run one stream so imports and caches are warm; the baseline."""
    kernel.run(PROBE)
    check_answer(kernel, start_chat(kernel, server, "Warm up", "rate=0,latency=0", 20))
    # The warm-up's task ends just after its static copy is sent: wait for two equal readings.
    deadline = time.monotonic() + 10
    last = probe(kernel, server)
    while True:
        time.sleep(0.2)
        now = probe(kernel, server)
        if all(now[k] == last[k] for k in COUNTS) or time.monotonic() > deadline:
            return now
        last = now


# -- the CI-sized run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=30, first_token_latency=0.1) as running:  # a model's pace
        yield running


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with running_kernel("python3", JPY_SESSION_NAME="load.ipynb") as running:
        yield running


def test_concurrent_then_sequential_streams_are_right_and_leave_nothing_running(
    kernel: Kernel, server: ServerThread
) -> None:
    baseline = prepare(kernel, server)
    idle = statistics.median(round_trip(kernel) for _ in range(5))

    # 10 at once, at 30 tokens a second: about 2.5 s each.
    running = [
        start_chat(kernel, server, f"Concurrent question {n}", "rate=30", 50) for n in range(10)
    ]
    busy = [round_trip(kernel) for _ in range(5)]
    during = probe(kernel, server)
    for started in running:
        check_answer(kernel, started)
    # The round trips were measured while streams ran, and the probe sees what they hold.
    assert during["connections"] > 0 and during["tasks"] > baseline["tasks"]
    assert during["comms"] > baseline["comms"] and during["widgets"] > baseline["widgets"]

    # 30 short ones, one after another.
    for n in range(30):
        check_answer(kernel, start_chat(kernel, server, f"Q{n}", "rate=0,latency=0", 10))

    after = settled(kernel, server, baseline)
    print(f"\nidle round trip {idle * 1000:.1f} ms, with 10 streams "
          f"{statistics.median(busy) * 1000:.1f} ms (max {max(busy) * 1000:.1f} ms)")  # fmt: skip
    print(f"baseline {baseline}\nduring   {during}\nafter    {after}")
    # Nothing that ran is left running; each finished answer keeps its widgets (so a
    # page that reloads later still shows it), a bounded number. Not always the same
    # number: a body segment (an HTML widget and its layout and style) exists only if
    # a block froze before the last frame, which depends on how the tokens were timed.
    running_counts = ("connections", "sockets", "tasks")
    assert {k: after[k] for k in running_counts} == {k: baseline[k] for k in running_counts}
    assert after["connections"] == 0
    kept = (after["widgets"] - baseline["widgets"]) / 40
    assert 0 < kept <= 40, kept
    assert after["comms"] - baseline["comms"] == after["widgets"] - baseline["widgets"]
    assert after["rss_mb"] - baseline["rss_mb"] < 100  # generous: 40 answers kept in history
    requests, complete, other = server_records(server)
    assert (requests, complete, other) == (41, 41, 0)
    assert max(busy) < 5, "the kernel kept answering while 10 streams ran"
