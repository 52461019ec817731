"""``ipyllm.map`` over many rows in a real kernel: wall time, kernel CPU, memory, and how
responsive the kernel stays, beside chatlas's ``parallel_chat_text`` on the same rows.

The teaching server runs in another process on 127.0.0.1, paced so that every answer
takes a known time (``--latency`` before the first token, then ``--words`` words at
``--rate`` tokens a second). One answer's time is measured first, in the same run; the
ideal for the map is rows x that time / concurrency, and wall time is given against it.

ipyllm runs as a notebook user runs it: in an ipykernel started through jupyter_client
with ``JPY_SESSION_NAME`` set (as jupyter_server sets it), so ``ipyllm.map(...)`` returns
at once and the rows run in the background with a live progress widget. Measured there:

- wall time, from the ``map`` call to its ``on_done`` callback, both timed in the kernel,
  with each answer's own time under load (``Transcript.elapsed``) and the slot use: the
  answers' summed time over concurrency x wall (1.0: no slot ever idle between rows);
- kernel CPU per row (``resource.getrusage``, every thread of the kernel process, from
  just before the call to ``on_done``), gross, and net of what the same kernel spends
  idle with the same pings (measured for a few seconds after the map);
- memory: the kernel's peak (max RSS) and its resident size before and after the map;
- ``1+1`` latency: an execute request every 0.2 s while the map runs, timed from the
  request sent to its reply received (median, p95, max), beside the same idle;
- how long each process was ready to run but waited for a CPU (Linux schedstat, summed
  over its threads), the kernel's, each plain process's and the server's: what other
  work on the machine cost the run.

Beside it, each in a plain Python process with its output sent to /dev/null, after a
warm-up of a few rows: ``ipyllm.map`` (terminal mode: the rows run in a worker thread);
the same map asking for whole answers (``params={"stream": False}``), like for like with
chatlas's ``parallel_chat``; two floors, the same rows streamed with bare httpx through
one shared client, bytes read and nothing decoded, over httpx's own transport (anyio)
and over ipyllm's ``SocketTransport`` (what ipyllm streams over by default); chatlas
streaming each row
(``stream_async`` on a fresh copy of one chat, under a semaphore of the same size), the
like-for-like client; and chatlas's ``parallel_chat_text`` with
``ChatOpenAICompletions`` (the same ``/chat/completions`` route ipyllm uses; chatlas's
``ChatOpenAI`` speaks the Responses API) at the same concurrency (``max_active``) and
with its requests-per-minute limit lifted (its default, 500 a minute, would alone make
1,000 rows take two minutes). chatlas's ``parallel_chat`` does not stream: it asks for
whole answers, which the teaching server sends at once. To give them the same answer
time, its requests go through the server's byte-level options ``split=S,delay=D``: each
JSON body comes in two pieces, the second one streamed answer's time after the first.

All figures come from one run on one machine, which others may share: compare the
ratios within a run, and repeat. The figures are printed as a table and written to
``artifacts/bench_map.json``.

    python benchmarks/bench_map.py [--quick] [--rows 1000] [--concurrency 64]
        [--latency 0.2] [--rate 200] [--words 40] [--no-chatlas] [--json PATH]
        [--loop-lag] [--profile PATH]

``--quick`` runs 200 rows with shorter baselines (about 30 s): a smoke run, not for the
goals (200 rows are 3.1 waves of 64, so the last wave alone keeps it above 1.2x ideal).
``--loop-lag`` watches the kernel's event loop with a 10 ms ticker: the longest lag, and
how much of it the loop's thread spent running (the rest it waited for a CPU).
``--profile PATH`` writes a pyinstrument profile of the kernel's event-loop thread during
the map (``pip install pyinstrument``); the figures of a profiled run are inflated.
Needs the ``test`` and ``bench`` extras (ipykernel, jupyter_client, chatlas).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import queue
import resource
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

PROMPT = "Tell me about {item}"
ROWS_CODE = "[f'row {{i}}' for i in range({rows})]"
PING_INTERVAL = 0.2
LATENCY_GOAL_MS = 50
WALL_GOAL = 1.2
WARM_UP_ROWS = 8
WORKERS = ("ipyllm", "ipyllm_whole", "floor", "floor_sockets", "chatlas", "chatlas_stream")


# -- the teaching server, in another process --------------------------------------------


def run_queue_wait(pid: int | str = "self") -> float | None:
    """Seconds a process's threads have spent ready to run but waiting for a CPU (Linux
    schedstat): what other work on the machine cost it. None where not available."""
    import glob

    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as file:
                total += int(file.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9 if total else None


class Server:
    def __init__(self, rate: float, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ipyllm.server", "--port", "0", "--rate", f"{rate:g}",
             "--latency", f"{latency:g}", "--quiet"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "http://127.0.0.1:" in line:
                start = line.index("http://127.0.0.1:")
                self.root = line[start:].split()[0].rstrip("/")
                break
        else:
            raise RuntimeError("the teaching server did not start")

    def usage(self) -> tuple[float, float] | None:
        """The server process's CPU time and run-queue wait so far (Linux), to show whether
        it kept pace."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return cpu, run_queue_wait(self.process.pid) or 0.0

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def one_answer_seconds(url: str, prompts: list[str]) -> float:
    """The median time of single streamed answers, one at a time, after a warm-up."""
    import ipyllm

    async def one(prompt: str) -> float:
        started = time.monotonic()
        options = {"provider": "openai", "base_url": url, "model": "demo", "api_key": "bench"}
        async for _event in ipyllm.stream(prompt, **options):
            pass
        return time.monotonic() - started

    async def all_of_them() -> list[float]:
        await one("warm-up")
        return [await one(prompt) for prompt in prompts]

    return statistics.median(asyncio.run(all_of_them()))


def whole_answer_url(root: str, words: int, seconds: float, prompts: list[str]) -> tuple[str, int]:
    """A base URL whose whole (not streamed) answers to these prompts take ``seconds``:
    each JSON body in two pieces, the second ``seconds`` after the first."""
    plain = f"{root}/with/words={words}/v1"
    sizes = []
    with httpx.Client(timeout=30) as client:
        for prompt in prompts:
            body = {"model": "demo", "messages": [{"role": "user", "content": prompt}]}
            sizes.append(len(client.post(plain + "/chat/completions", json=body).content))
    piece = (max(sizes) + 1) // 2 + 8  # every body longer than one piece, shorter than two
    if min(sizes) <= piece:
        raise RuntimeError(f"answer sizes {min(sizes)}-{max(sizes)} do not fit two pieces")
    return f"{root}/with/words={words},split={piece},delay={seconds:.4f}/v1", piece


def whole_answer_seconds(url: str, prompts: list[str]) -> float:
    times = []
    with httpx.Client(timeout=30) as client:
        for prompt in prompts:
            body = {"model": "demo", "messages": [{"role": "user", "content": prompt}]}
            started = time.monotonic()
            client.post(url + "/chat/completions", json=body).raise_for_status()
            times.append(time.monotonic() - started)
    return statistics.median(times)


# -- ipyllm in a real kernel ------------------------------------------------------------

SETUP_CODE = """
import resource, time
import ipyllm
_bench_rows = {rows_code}
_bench_options = dict(provider="openai", base_url={url!r}, model="demo", api_key="bench")
_bench = {{}}

def _bench_rss():
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) for line in file if line.startswith("VmRSS"))

def _bench_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

{run_queue_wait}
def _bench_done(transcripts):
    _bench["t1"] = time.monotonic()
    _bench["cpu1"] = _bench_cpu()
    _bench["wait1"] = run_queue_wait()
    _bench["rss1"] = _bench_rss()
    _bench["statuses"] = [t.status for t in transcripts]
    _bench["elapsed"] = [t.elapsed for t in transcripts]
"""

START_CODE = """
_bench.clear()
_bench["maxrss0"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_bench["rss0"] = _bench_rss()
_bench["t0"] = time.monotonic()
_bench["cpu0"] = _bench_cpu()
_bench["wait0"] = run_queue_wait()
_bench_result = ipyllm.map({prompt!r}, {rows}, concurrency={concurrency},
                           on_done=_bench_done, **_bench_options)
"""

PROFILE_CODE = """
from pyinstrument import Profiler
_bench_profiler = Profiler(interval=0.001, async_mode="disabled")  # the whole loop thread
_bench_plain_done = _bench_done

def _bench_done(transcripts):
    _bench_profiler.stop()
    _bench_plain_done(transcripts)
    with open({path!r}, "w", encoding="utf-8") as file:
        file.write(_bench_profiler.output_text(unicode=False, color=False))
"""

LAG_CODE = """
import asyncio
_bench_lags = []

async def _bench_lagger():
    while True:
        t, cpu = time.monotonic(), time.thread_time()
        await asyncio.sleep(0.01)
        _bench_lags.append((time.monotonic() - t - 0.01, time.thread_time() - cpu, t))

_bench_lag_task = asyncio.get_running_loop().create_task(_bench_lagger())
"""

RESULT_EXPRESSION = """dict(
    wall=_bench["t1"] - _bench["t0"],
    cpu=_bench["cpu1"] - _bench["cpu0"],
    wait=None if _bench["wait0"] is None else _bench["wait1"] - _bench["wait0"],
    maxrss0=_bench["maxrss0"],
    maxrss1=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    rss0=_bench["rss0"],
    rss1=_bench["rss1"],
    statuses={s: _bench["statuses"].count(s) for s in set(_bench["statuses"])},
    elapsed=_bench["elapsed"],
    view=type(_bench_result.view).__name__,
)"""


class KernelDriver:
    """A kernel started through jupyter_client; iopub drained (and counted) on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(
            kernel_name="python3", env={**os.environ, **env}, startup_timeout=120
        )
        self.iopub: list[tuple[float, str]] = []
        self._running = True
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while self._running:
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:  # closed at shutdown
                return
            self.iopub.append((time.monotonic(), message["msg_type"]))

    def request(
        self, code: str, expressions: dict[str, str] | None = None, timeout: float = 120
    ) -> tuple[dict[str, Any], float]:
        """Run code; return its reply content and the seconds until the reply came."""
        sent = time.monotonic()
        msg_id = self.client.execute(
            code, user_expressions=expressions or {}, store_history=False, stop_on_error=False
        )
        deadline = sent + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                content = reply["content"]
                if content["status"] != "ok":
                    raise RuntimeError(f"kernel: {content.get('ename')}: {content.get('evalue')}")
                return content, time.monotonic() - sent

    def value(self, expression: str) -> Any:
        content, _ = self.request("", {"value": expression})
        value = content["user_expressions"]["value"]
        if value["status"] != "ok":
            raise RuntimeError(f"kernel: {value.get('ename')}: {value.get('evalue')}")
        import ast

        return ast.literal_eval(value["data"]["text/plain"])

    def pings(self, until_done: bool, seconds: float, timeout: float) -> list[float]:
        """``1+1`` every PING_INTERVAL s: until the map's on_done ran, or for ``seconds``."""
        latencies = []
        started = time.monotonic()
        self.series: list[tuple[float, float]] = []  # (sent at, seconds to the reply)
        expressions = {"done": "'t1' in _bench"} if until_done else {}
        while True:
            tick = time.monotonic()
            content, took = self.request("1+1", expressions)
            latencies.append(took)
            self.series.append((tick, took))
            elapsed = time.monotonic() - started
            if until_done and content["user_expressions"]["done"]["data"]["text/plain"] == "True":
                return latencies
            if not until_done and elapsed >= seconds:
                return latencies
            if elapsed > timeout:
                raise RuntimeError("the map did not finish in time")
            time.sleep(max(0.0, tick + PING_INTERVAL - time.monotonic()))

    def close(self) -> None:
        self._running = False
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def in_kernel(
    url: str,
    rows: int,
    concurrency: int,
    answer: float,
    idle_seconds: float,
    profile: str | None = None,
    loop_lag: bool = False,
) -> dict[str, Any]:
    kernel = KernelDriver({"JPY_SESSION_NAME": "bench_map.ipynb"})
    try:
        setup = SETUP_CODE.format(
            rows_code=ROWS_CODE.format(rows=rows),
            url=url,
            run_queue_wait=inspect.getsource(run_queue_wait),
        )
        kernel.request(setup)
        # Warm-up: imports, widgets and the first connections, outside the measure.
        warm = START_CODE.format(
            prompt=PROMPT, rows=f"_bench_rows[:{WARM_UP_ROWS}]", concurrency=concurrency
        )
        kernel.request(warm)
        kernel.pings(until_done=True, seconds=0, timeout=60)
        idle_before = kernel.pings(until_done=False, seconds=1, timeout=60)

        if profile:
            kernel.request(PROFILE_CODE.format(path=str(Path(profile).resolve())))
            kernel.request("_bench_profiler.start()")
        if loop_lag:
            kernel.request(LAG_CODE)
        start = START_CODE.format(prompt=PROMPT, rows="_bench_rows", concurrency=concurrency)
        started = time.monotonic()
        content, start_reply = kernel.request(start, {"done": "_bench_result.done"})
        returned_at_once = content["user_expressions"]["done"]["data"]["text/plain"] == "False"
        iopub_from = len(kernel.iopub)
        busy = kernel.pings(until_done=True, seconds=0, timeout=rows * answer * 4 + 120)
        iopub = kernel.iopub[iopub_from:]
        series = [[round(at - started, 3), round(took * 1e3, 1)] for at, took in kernel.series]
        result = kernel.value(RESULT_EXPRESSION)
        lag = {}
        if loop_lag:
            kernel.request("_bench_lag_task.cancel()")
            lags = kernel.value(
                "[(round(a, 5), round(b, 5), round(t - _bench['t0'], 3))"
                " for a, b, t in _bench_lags]"
            )
            longest = max(lags)
            busiest = max(lags, key=lambda lag: lag[1])
            lag = {
                "loop_lag_max_ms": longest[0] * 1e3,
                "loop_lag_p99_ms": _percentile([a for a, _, _ in lags], 0.99) * 1e3,
                "loop_thread_cpu_in_longest_lag_ms": longest[1] * 1e3,
                "loop_longest_lag_at_s": longest[2],
                "loop_most_cpu_between_ticks_ms": busiest[1] * 1e3,
                "loop_most_cpu_at_s": busiest[2],  # after the map call; wall_s is its end
                "loop_ticks_over_20ms_cpu": [
                    [t, round(b * 1e3, 1)] for _, b, t in lags if b > 0.02
                ],
            }

        # What the same kernel spends with nothing running but the same pings.
        cpu0 = kernel.value("_bench_cpu()")
        idle_started = time.monotonic()
        idle = kernel.pings(until_done=False, seconds=idle_seconds, timeout=60)
        idle_rate = (kernel.value("_bench_cpu()") - cpu0) / (time.monotonic() - idle_started)
    finally:
        kernel.close()
    wall = result["wall"]
    return {
        "wall_s": wall,
        "ratio_to_ideal": None,  # filled in by the caller
        "cpu_s": result["cpu"],
        "cpu_ms_per_row": result["cpu"] / rows * 1e3,
        "idle_cpu_s_per_s": idle_rate,
        "net_cpu_ms_per_row": (result["cpu"] - idle_rate * wall) / rows * 1e3,
        "cpu_share_of_one_core": result["cpu"] / wall,
        "run_queue_wait_s": result["wait"],
        "max_rss_mb_before": result["maxrss0"] / 1024,
        "max_rss_mb_after": result["maxrss1"] / 1024,
        "rss_mb_before": result["rss0"] / 1024,  # resident now, not the peak
        "rss_mb_at_end": result["rss1"] / 1024,
        "statuses": result["statuses"],
        **answer_times(result["elapsed"], wall, concurrency),
        "view": result["view"],
        "returned_at_once": returned_at_once,
        "start_cell_reply_ms": start_reply * 1e3,
        "ping_count": len(busy),
        "ping_median_ms": statistics.median(busy) * 1e3,
        "ping_p95_ms": _percentile(busy, 0.95) * 1e3,
        "ping_max_ms": max(busy) * 1e3,
        "idle_ping_median_ms": statistics.median(idle_before + idle) * 1e3,
        "idle_ping_max_ms": max(idle_before + idle) * 1e3,
        "iopub_messages": len(iopub),
        "comm_messages": sum(1 for _, kind in iopub if kind == "comm_msg"),
        **lag,
        "pings_s_ms": series,  # each 1+1: sent this long after the map cell, took this long
    }


def answer_times(elapsed: list[float | None], wall: float, concurrency: int) -> dict[str, Any]:
    """How long answers took under load, and how busy the map kept its slots: the sum of
    the answers' times over concurrency x wall (1.0: never a slot idle)."""
    times = [t for t in elapsed if t is not None]
    if not times:
        return {}
    return {
        "answer_median_s": statistics.median(times),
        "answer_p95_s": _percentile(times, 0.95),
        "slot_use": sum(times) / (concurrency * wall),
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- plain Python processes: ipyllm and chatlas side by side -----------------------------


class Meter:
    """Wall time, CPU time (every thread), run-queue wait and peak RSS of this process,
    from ``start()`` to ``stop()``."""

    def start(self) -> None:
        self.maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.rss0 = _rss_kb()
        self.t0, self.cpu0, self.wait0 = time.monotonic(), _cpu(), run_queue_wait()

    def stop(self) -> None:
        self.wall = time.monotonic() - self.t0
        self.cpu = _cpu() - self.cpu0
        wait1 = run_queue_wait()
        self.wait = None if self.wait0 is None or wait1 is None else wait1 - self.wait0
        self.rss1 = _rss_kb()

    def report(self, rows: int) -> dict[str, Any]:
        return {
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "cpu_ms_per_row": self.cpu / rows * 1e3,
            "run_queue_wait_s": self.wait,
            "max_rss_mb_before": self.maxrss0 / 1024,
            "max_rss_mb_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_mb_before": self.rss0 / 1024,
            "rss_mb_at_end": self.rss1 / 1024,
        }


def _rss_kb() -> int:
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) for line in file if line.startswith("VmRSS"))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(library: str, url: str, rows: int, concurrency: int) -> None:
    """Run in a child process: warm up, then one measured batch; print JSON on stdout."""
    out = sys.stdout
    prompts = [PROMPT.format(item=f"row {i}") for i in range(rows)]
    meter = Meter()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # answers and progress bars: not measured here
    if library in ("ipyllm", "ipyllm_whole"):
        import ipyllm

        options: dict[str, Any] = {
            "provider": "openai", "base_url": url, "model": "demo", "api_key": "bench"
        }  # fmt: skip
        if library == "ipyllm_whole":
            options["params"] = {"stream": False}  # whole answers, as parallel_chat asks
        ipyllm.map(PROMPT, [f"row {i}" for i in range(WARM_UP_ROWS)], concurrency=concurrency,
                   **options)  # fmt: skip
        meter.start()
        result = ipyllm.map(PROMPT, [f"row {i}" for i in range(rows)], concurrency=concurrency,
                            **options)  # fmt: skip
        meter.stop()
        statuses = [t.status if t is not None else "queued" for t in result.transcripts]
        elapsed = [t.elapsed if t is not None else None for t in result.transcripts]
    elif library in ("floor", "floor_sockets"):
        from ipyllm.client import SocketTransport

        transport = None
        if library == "floor_sockets":
            transport = SocketTransport(ssl.create_default_context())
        client = httpx.AsyncClient(timeout=60, transport=transport)

        async def bytes_of(prompt: str) -> int:
            body = {"model": "demo", "messages": [{"role": "user", "content": prompt}],
                    "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
            size = 0
            async with client.stream("POST", url + "/chat/completions", json=body) as r:
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
            return size

        statuses, elapsed = each_row(bytes_of, prompts, concurrency, meter, client.aclose)
    elif library == "chatlas_stream":
        import copy

        import chatlas

        base = chatlas.ChatOpenAICompletions(base_url=url, api_key="bench", model="demo")

        async def text_of(prompt: str) -> str:
            chat = copy.deepcopy(base)  # a fresh conversation, as parallel_chat makes
            return "".join([str(piece) async for piece in await chat.stream_async(prompt)])

        statuses, elapsed = each_row(text_of, prompts, concurrency, meter)
    else:
        import chatlas

        run = chatlas.parallel_chat_text

        async def main() -> list[Any]:
            chat = chatlas.ChatOpenAICompletions(base_url=url, api_key="bench", model="demo")
            # rpm: chatlas's own requests-per-minute limit (500 by default), lifted
            await run(chat, prompts[:WARM_UP_ROWS], max_active=concurrency, rpm=10**9)
            meter.start()
            answers = await run(chat, prompts, max_active=concurrency, rpm=10**9)
            meter.stop()
            return list(answers)

        answers = asyncio.run(main())
        statuses = [
            "done" if isinstance(a, str) else "queued" if a is None else "error" for a in answers
        ]
        elapsed = []  # parallel_chat does not say when each answer started and ended
    report = {
        **meter.report(rows),
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        **answer_times(elapsed, meter.wall, concurrency),
    }
    print(json.dumps(report), file=out)


def each_row(
    answer: Callable[[str], Awaitable[object]],
    prompts: list[str],
    concurrency: int,
    meter: Meter,
    finally_: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[str], list[float]]:
    """Warm-up rows, then every prompt through ``answer``, ``concurrency`` at a time, in one
    event loop, metered: each row's status ("done" when it gave something) and its seconds
    from the moment it had a slot. ``finally_`` runs last, in that loop."""

    async def timed(gate: asyncio.Semaphore, prompt: str) -> tuple[object, float]:
        async with gate:
            started = time.monotonic()
            result = await answer(prompt)
            return result, time.monotonic() - started

    async def main() -> list[tuple[object, float]]:
        gate = asyncio.Semaphore(concurrency)
        try:
            await asyncio.gather(*(timed(gate, p) for p in prompts[:WARM_UP_ROWS]))
            meter.start()
            ends = await asyncio.gather(*(timed(gate, p) for p in prompts))
            meter.stop()
            return ends
        finally:
            if finally_ is not None:
                await finally_()

    ends = asyncio.run(main())
    return ["done" if result else "error" for result, _ in ends], [s for _, s in ends]


def in_process(library: str, url: str, rows: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", library, "--url", url,
               "--rows", str(rows), "--concurrency", str(concurrency)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=rows * 4 + 300)
    if done.returncode != 0:
        raise RuntimeError(f"{library} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def chatlas_problem() -> str | None:
    """Why chatlas cannot run here, or None."""
    try:
        import chatlas
    except ImportError as error:
        return f"chatlas is not installed ({error}); pip install -e '.[bench]'"
    if not hasattr(chatlas, "parallel_chat_text") or not hasattr(chatlas, "ChatOpenAICompletions"):
        return f"chatlas {chatlas.__version__} has no parallel_chat_text or ChatOpenAICompletions"
    return None


# -- the run ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 rows, short baselines")
    parser.add_argument("--rows", type=int, default=None, help="default 1000 (200 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds to the first token")
    parser.add_argument("--rate", type=float, default=200, help="tokens per second")
    parser.add_argument("--words", type=int, default=40, help="words in each answer")
    parser.add_argument("--no-chatlas", action="store_true")
    parser.add_argument("--json", default="artifacts/bench_map.json")
    parser.add_argument(
        "--loop-lag",
        action="store_true",
        help="watch the kernel's event loop with a 10 ms ticker (adds a little CPU)",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="profile the kernel's map with pyinstrument into PATH (inflates its figures)",
    )
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = args.rows or (200 if args.quick else 1000)
    if args.worker:
        worker(args.worker, args.url, rows, args.concurrency)
        return
    samples, idle_seconds = (3, 1.0) if args.quick else (7, 3.0)
    sample_prompts = [PROMPT.format(item=f"row {i}") for i in range(samples)]
    skip_chatlas = "--no-chatlas given" if args.no_chatlas else chatlas_problem()

    server = Server(args.rate, args.latency)
    url = f"{server.root}/with/words={args.words}/v1"
    load: dict[str, tuple[float, ...]] = {"start": os.getloadavg()}
    server_use: dict[str, tuple[float, float] | None] = {}
    try:
        answer = one_answer_seconds(url, sample_prompts)
        ideal = rows * answer / args.concurrency
        results: dict[str, Any] = {}

        def measure(name: str, run: Callable[[], dict[str, Any]]) -> None:
            """One run's figures, with the server's CPU and the load average after it."""
            before = server.usage()
            results[name] = run()
            server_use[name] = _spent(before, server.usage())
            load[f"after_{name}"] = os.getloadavg()

        measure(
            "ipyllm_kernel",
            lambda: in_kernel(
                url, rows, args.concurrency, answer, idle_seconds, args.profile, args.loop_lag
            ),
        )
        plain_runs = [("ipyllm_plain", "ipyllm", url), ("httpx_floor", "floor", url),
                      ("sockets_floor", "floor_sockets", url)]  # fmt: skip
        whole_url, whole_answer, piece = None, None, None
        if skip_chatlas is None:
            all_prompts = [PROMPT.format(item=f"row {i}") for i in range(rows)]
            whole_url, piece = whole_answer_url(server.root, args.words, answer, all_prompts)
            whole_answer = whole_answer_seconds(whole_url, sample_prompts)
            plain_runs += [("chatlas", "chatlas", whole_url),
                           ("ipyllm_whole", "ipyllm_whole", whole_url),
                           ("chatlas_stream", "chatlas_stream", url)]  # fmt: skip
        for name, worker_name, run_url in plain_runs:
            measure(name, lambda w=worker_name, u=run_url: in_process(w, u, rows, args.concurrency))
    finally:
        server.close()

    for name, result in results.items():
        one = whole_answer if name in ("chatlas", "ipyllm_whole") else answer
        assert one is not None
        result["ideal_s"] = rows * one / args.concurrency
        result["ratio_to_ideal"] = result["wall_s"] / result["ideal_s"]
        use = server_use.get(name)
        result["server_cpu_s"], result["server_run_queue_wait_s"] = use or (None, None)
    report = {
        "config": {
            "rows": rows,
            "concurrency": args.concurrency,
            "latency_s": args.latency,
            "rate_tokens_per_s": args.rate,
            "words": args.words,
            "ping_interval_s": PING_INTERVAL,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "chatlas": _version("chatlas"),
            "ipyllm": _version("ipyllm"),
            "ipykernel": _version("ipykernel"),
            "chatlas_pacing": {"url_options": whole_url, "piece_bytes": piece},
        },
        "one_answer_s": answer,
        "one_whole_answer_s": whole_answer,
        "ideal_s": ideal,
        "load_average": load,
        "chatlas_skipped": skip_chatlas,
        "results": results,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nwritten to {path}")


def print_report(report: dict[str, Any]) -> None:
    config, results = report["config"], report["results"]
    print(
        f"{config['rows']} rows at concurrency {config['concurrency']}; one answer "
        f"{report['one_answer_s']:.3f} s ({config['latency_s']:g} s + {config['words']} words "
        f"at {config['rate_tokens_per_s']:g} tokens/s), ideal {report['ideal_s']:.2f} s; "
        f"{config['cpus']} CPUs, load average {report['load_average']['start'][0]:.1f} at start\n"
    )
    names = {
        "ipyllm_kernel": "ipyllm.map, kernel (background)",
        "ipyllm_plain": "ipyllm.map, plain Python",
        "httpx_floor": "httpx streaming, bytes only, httpx's own transport, plain Python",
        "sockets_floor": "httpx streaming, bytes only, ipyllm's SocketTransport, plain Python",
        "chatlas": "chatlas parallel_chat_text (whole answers), plain Python",
        "ipyllm_whole": "ipyllm.map with params={'stream': False} (whole answers), plain Python",
        "chatlas_stream": "chatlas stream_async per row (streamed), plain Python",
    }
    print(
        "| run | wall s | × ideal | answer under load s | slot use | CPU ms/row | "
        "waited for a CPU s | peak RSS MB | server CPU s (waited s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        cpu = f"{r['cpu_ms_per_row']:.2f}"
        if "net_cpu_ms_per_row" in r:
            cpu += f" (net {r['net_cpu_ms_per_row']:.2f})"
        server = (
            ""
            if r.get("server_cpu_s") is None
            else f"{r['server_cpu_s']:.1f} ({r['server_run_queue_wait_s']:.1f})"
        )
        answer = f"{r['answer_median_s']:.3f}" if "answer_median_s" in r else "n/a"
        slots = f"{r['slot_use']:.2f}" if "slot_use" in r else "n/a"
        waited = "n/a" if r.get("run_queue_wait_s") is None else f"{r['run_queue_wait_s']:.1f}"
        print(
            f"| {names[name]} | {r['wall_s']:.2f} | {r['ratio_to_ideal']:.2f} | {answer} | "
            f"{slots} | {cpu} | {waited} | "
            f"{r['max_rss_mb_before']:.0f} → {r['max_rss_mb_after']:.0f} | {server} |"
        )
    k = results["ipyllm_kernel"]
    print(
        f"\n1+1 in the kernel during the map: median {k['ping_median_ms']:.1f} ms, "
        f"p95 {k['ping_p95_ms']:.1f} ms, max {k['ping_max_ms']:.1f} ms over {k['ping_count']} "
        f"requests (idle: median {k['idle_ping_median_ms']:.1f}, max "
        f"{k['idle_ping_max_ms']:.1f} ms); the map cell replied in "
        f"{k['start_cell_reply_ms']:.0f} ms, {k['comm_messages']} widget messages; the kernel "
        f"used {k['cpu_share_of_one_core']:.0%} of one core during the map; its resident memory "
        f"went from {k['rss_mb_before']:.0f} to {k['rss_mb_at_end']:.0f} MB."
    )
    if "loop_lag_max_ms" in k:
        print(
            f"event loop: longest lag {k['loop_lag_max_ms']:.0f} ms (p99 "
            f"{k['loop_lag_p99_ms']:.0f} ms), its thread ran "
            f"{k['loop_thread_cpu_in_longest_lag_ms']:.1f} ms of it; the most CPU the loop "
            f"thread spent between two 10 ms ticks: {k['loop_most_cpu_between_ticks_ms']:.1f} ms, "
            f"{k['loop_most_cpu_at_s']:.2f} s after the map call"
        )
    print("statuses: " + "; ".join(f"{n}: {r['statuses']}" for n, r in results.items()))
    goals = [
        f"wall within {WALL_GOAL}x ideal: "
        f"{'met' if k['ratio_to_ideal'] <= WALL_GOAL else 'NOT met'}",
        f"1+1 under {LATENCY_GOAL_MS} ms throughout: "
        f"{'met' if k['ping_max_ms'] < LATENCY_GOAL_MS else 'NOT met'}",
    ]
    # Like for like: streamed rows against chatlas streaming, whole answers against whole.
    pairs = (
        (
            "ipyllm_kernel",
            "chatlas",
            "ipyllm.map streamed, in the kernel, vs chatlas parallel_chat",
        ),
        ("ipyllm_whole", "chatlas", "ipyllm.map whole answers vs chatlas parallel_chat"),
        ("ipyllm_kernel", "chatlas_stream", "ipyllm.map streamed vs chatlas streamed"),
    )
    for ours, theirs, label in pairs:
        if ours in results and theirs in results:
            less = results[ours]["cpu_ms_per_row"] < results[theirs]["cpu_ms_per_row"]
            goals.append(f"less CPU per row, {label}: {'met' if less else 'NOT met'}")
    if "chatlas" not in results:
        goals.append(f"chatlas skipped: {report['chatlas_skipped']}")
    print("goals: " + "; ".join(goals))


def _spent(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> tuple[float, float] | None:
    if before is None or after is None:
        return None
    return after[0] - before[0], after[1] - before[1]


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    with contextlib.suppress(PackageNotFoundError):
        return version(name)
    return None


if __name__ == "__main__":
    main()
