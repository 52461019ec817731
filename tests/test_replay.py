"""Recording streams in SQLite and replaying them: pace, misses, secrets, concurrency, damage."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import nullcontext
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import ipyllm
from ipyllm.client.store import Store
from ipyllm.events import RawEvent
from ipyllm.server import ServerThread, TeachingServer

from .conftest import base_url_for
from .kernels import running_kernel

CANARY = "sk-canary-record-5f0c2a9e71"


async def timed_raw_events(answer: ipyllm.Stream) -> list[tuple[float, str]]:
    return [(e.time, e.data) async for e in answer if isinstance(e, RawEvent)]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama", "gemini"])
async def test_a_recorded_stream_replays_with_the_server_gone(
    provider: str, tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite3"
    async with TeachingServer(token_rate=0, first_token_latency=0) as server:
        live = await ipyllm.achat(
            "Record me", provider=provider, base_url=base_url_for(server.url, provider),
            api_key=CANARY, record=True, store=store, temperature=0.2,
        )  # fmt: skip
        url = base_url_for(server.url, provider)
    replayed = await ipyllm.achat(
        "Record me", provider=provider, base_url=url, replay=True, store=store, temperature=0.2
    )
    assert replayed.text == live.text and replayed.text
    assert (replayed.finish_reason, replayed.status) == (live.finish_reason, "done")
    assert replayed.usage == live.usage


async def test_replay_keeps_the_recorded_pace_or_goes_n_times_faster(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    async with TeachingServer(token_rate=25, first_token_latency=0.1) as server:
        url = base_url_for(server.url, "openai", "words=40")
        recorded = await timed_raw_events(
            ipyllm.stream("Pace", base_url=url, raw=True, record=True, store=store)
        )
    real_pace = await timed_raw_events(
        ipyllm.stream("Pace", base_url=url, raw=True, replay=True, replay_speed=1, store=store)
    )
    assert [d for _, d in real_pace] == [d for _, d in recorded]
    worst = max(abs(a - b) for (a, _), (b, _) in zip(real_pace, recorded, strict=True))
    assert worst < 0.1  # arrival times reproduced within a small tolerance
    started = time.monotonic()
    faster = await timed_raw_events(
        ipyllm.stream("Pace", base_url=url, raw=True, replay=True, replay_speed=10, store=store)
    )
    assert [d for _, d in faster] == [d for _, d in recorded]
    span = recorded[-1][0] - recorded[0][0]
    assert span > 1.0
    assert (faster[-1][0] - faster[0][0]) == pytest.approx(span / 10, abs=0.08)
    instant = await timed_raw_events(
        ipyllm.stream("Pace", base_url=url, raw=True, replay=True, store=store)
    )
    assert instant[-1][0] < 0.2
    assert time.monotonic() - started < span  # both replays together beat one live run


async def test_a_missing_recording_fails_clearly_or_falls_back(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    with pytest.raises(ipyllm.ConfigurationError, match="no recording of this request"):
        ipyllm.stream("Never recorded", provider="openai", replay=True, store=store)
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    transcript = await ipyllm.achat(
        "Never recorded", provider="demo", base_url=fast, replay="fallback", store=store
    )
    assert transcript.status == "done" and transcript.text


async def test_different_parameters_are_different_recordings(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    await ipyllm.achat("Same", provider="demo", base_url=fast, record=True, store=store, seed=1)
    with pytest.raises(ipyllm.ConfigurationError, match="no recording"):
        ipyllm.stream("Same", provider="demo", base_url=fast, replay=True, store=store, seed=2)


async def test_errors_and_stops_are_recorded_and_no_key_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    async with TeachingServer(token_rate=50, first_token_latency=0) as server:
        for options in ("", "status=401", "drop_after=5", "error_after=3"):
            with pytest.raises(ipyllm.StreamError) if options else nullcontext():
                await ipyllm.achat(
                    f"Run {options}", base_url=base_url_for(server.url, "openai", options),
                    api_key=CANARY, record=True, store=store, max_retries=0,
                )  # fmt: skip
        stopped = ipyllm.stream(
            "Stop me", base_url=base_url_for(server.url, "openai"), api_key=CANARY,
            record=True, store=store,
        )  # fmt: skip
        async for _ in stopped:
            if len(stopped.transcript.text) > 20:
                break
        await stopped.aclose()
    assert Store(store).count_exchanges() == 5
    statuses = sqlite3.connect(store).execute("SELECT status FROM exchanges").fetchall()
    assert sorted(s for (s,) in statuses) == ["done", "error", "error", "error", "stopped"]
    for path in store.parent.iterdir():  # the database, its WAL and its index
        assert CANARY.encode() not in path.read_bytes()
        assert b"authorization" not in path.read_bytes().lower()


def test_two_kernels_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    with ServerThread(token_rate=300, first_token_latency=0) as server:
        url = f"{server.url}/with/words=40/v1"  # short answers: many writes in a few seconds
        code = (
            "import asyncio, ipyllm\n"
            "async def record(tag):\n"
            "    for n in range(25):\n"
            f"        await ipyllm.achat(f'{{tag}} {{n}}', base_url={url!r}, record=True,\n"
            f"                           store={str(store)!r})\n"
            "recording = asyncio.ensure_future(record({tag!r}))\n"
        )
        with running_kernel() as first, running_kernel() as second:
            first.run(code.replace("{tag!r}", "'first'"))
            second.run(code.replace("{tag!r}", "'second'"))  # both record in the background
            for kernel in (first, second):
                deadline = time.monotonic() + 60
                while kernel.evaluate("recording.done()") != "True":
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                assert kernel.evaluate("recording.exception()") == "None"
    assert Store(store).count_exchanges() == 50


def test_a_writer_killed_mid_transaction_leaves_the_store_intact(tmp_path: Path) -> None:
    store_path = tmp_path / "store.sqlite3"
    store = Store(store_path)
    assert store.count_exchanges() == 0
    script = textwrap.dedent(
        f"""
        import sqlite3, sys, time
        db = sqlite3.connect({str(store_path)!r}, isolation_level=None)
        db.execute("BEGIN")
        db.execute("INSERT INTO exchanges (created, request_key, provider, model, request,"
                   " http_status, response_headers) VALUES (0, 'k', 'p', 'm', '{{}}', 200, '[]')")
        for seq in range(100000):
            db.execute("INSERT INTO chunks VALUES (1, ?, 0, ?)", (seq, b"x" * 100))
            if seq == 1000:
                print("writing", flush=True)
        time.sleep(60)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert Store(store_path).count_exchanges() == 0  # the unfinished transaction is gone


async def test_a_corrupt_or_locked_store_costs_the_recording_not_the_answer(
    tmp_path: Path,
) -> None:
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database" * 100)
    transcript = await ipyllm.achat(
        "Still answered", provider="demo", base_url=fast, record=True, store=corrupt
    )
    assert transcript.status == "done" and transcript.text
    assert any("not a readable SQLite database" in note for note in transcript.notes)

    locked = tmp_path / "locked.sqlite3"
    Store(locked).count_exchanges()  # create it
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        transcript = await ipyllm.achat(
            "Still answered", provider="demo", base_url=fast, record=True,
            store=Store(locked, timeout=0.2),
        )  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
    assert transcript.status == "done" and transcript.text
    assert any("locked" in note for note in transcript.notes)


def test_a_notebook_recorded_once_replays_headless_with_the_server_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.sqlite3"
    monkeypatch.setenv("IPYLLM_STORE", str(store))

    def run(url: str) -> list[str]:
        cells = ["%load_ext ipyllm", *(f"%%chat --base-url {url}\nQuestion {n}" for n in range(3))]
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
        return [cell.outputs[0].data["text/markdown"] for cell in notebook.cells[1:]]

    with ServerThread(token_rate=100, first_token_latency=0) as server:
        url = f"{server.url}/v1"
        monkeypatch.setenv("IPYLLM_RECORD", "1")
        recorded = run(url)
    monkeypatch.delenv("IPYLLM_RECORD")
    monkeypatch.setenv("IPYLLM_REPLAY", "1")
    replayed = run(url)  # the server is gone: any live request would fail
    assert replayed == recorded
    assert all(answer.strip() for answer in replayed)


def test_replay_needs_no_key(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    asyncio.run(ipyllm.achat("k", provider="demo", base_url=fast, record=True, store=store))
    # openai at its default URL would need OPENAI_API_KEY; a replay does not.
    with pytest.raises(ipyllm.ConfigurationError, match="no recording"):
        ipyllm.stream("k", provider="openai", replay=True, store=store)


def git(project: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def test_the_store_beside_a_notebook_stays_out_of_git_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default store (.ipyllm/ beside the notebook) holds prompts and answers; the folder
    ipyllm creates ignores itself, so `git add .` stages the notebook and nothing else."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    monkeypatch.delenv("IPYLLM_STORE")  # the default path, as a user has it
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    cells = ["%load_ext ipyllm", f"%%chat -p demo --base-url {fast} --record\nA private prompt"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # Run as Jupyter runs a notebook: the kernel's working directory is the notebook's folder.
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": project}}
    ).execute()
    nbformat.write(notebook, project / "report.ipynb")

    store = Store(project / ".ipyllm" / "store.sqlite3")
    assert store.count_exchanges() == 1
    assert [turn.prompt for turn in store.turns()] == ["A private prompt"]
    assert (project / ".ipyllm" / ".gitignore").read_text().splitlines()[-1] == "*"
    git(project, "add", ".")
    assert git(project, "diff", "--cached", "--name-only").split() == ["report.ipynb"]


def test_only_a_folder_the_store_creates_gets_a_gitignore(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    Store(mine / "store.sqlite3").count_exchanges()  # the first use creates the file
    assert not (mine / ".gitignore").exists()  # the user's folder is left as it was
    Store(tmp_path / "made" / "deeper" / "store.sqlite3").count_exchanges()
    assert (tmp_path / "made" / "deeper" / ".gitignore").exists()
    assert not (tmp_path / "made" / ".gitignore").exists()
