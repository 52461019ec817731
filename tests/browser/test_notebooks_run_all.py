"""The shipped notebooks under Run All in JupyterLab, and what a class sees in them.

Run All in JupyterLab is not a headless run: every %%chat cell returns at once and the next
cell runs while the answer streams. Each shipped notebook is run that way (the frontend's
own ``notebook:run-all-cells`` command), the kernel goes idle, every answer ends, and each
lesson cell must show what the headless run shows: the 429 lesson retried and done, the 401
naming the variable, the mid-stream error keeping its text, the dropped connection said so.
While the ``--events`` cell streams, its raw-events panel must show its newest events.

Then what a reader sees of answers themselves: the stopped and the error state in the light
and the dark theme (screenshots, and the error red's contrast), math typeset while an
answer streams and in a stopped answer, and four answers growing above a reader without
pulling the page from under them. Screenshots go to artifacts/screenshots/;
IPYLLM_UPDATE_DOCS=1 also writes docs/screenshots/{stopped,error}-{light,dark}.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
import pytest_asyncio

from ipyllm.server import ServerThread
from tests.browser.chat_helpers import CLEAN, DOCS_SCREENSHOTS, ChatNotebook, shutdown_session
from tests.browser.harness import (
    PANEL,
    REPO_ROOT,
    SCREENSHOT_DIR,
    JupyterServer,
    install_sentinel,
    page_report,
    wait_until,
    write_notebook,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

NOTEBOOKS = REPO_ROOT / "notebooks"
VIEWPORT = {"width": 1200, "height": 1000}
RUN_ALL_TIMEOUT_MS = 150_000

# The state of every answer the notebook on screen shows: the ipyllm-state-* of each status
# line that is shown (a live view's, or a static copy's where no widget is shown).
ANSWER_STATES_JS = f"""
() => [...document.querySelectorAll("{PANEL} .ipyllm-status")]
  .filter(el => el.checkVisibility())
  .map(el => [...el.classList].find(c => c.startsWith("ipyllm-state-")))
  .filter(Boolean)
  .map(c => c.slice("ipyllm-state-".length))
"""
# Every code cell has run: its prompt is "[n]:" (not "[ ]:" or "[*]:").
ALL_RAN_JS = f"""
() => [...document.querySelectorAll("{PANEL} .jp-CodeCell .jp-InputArea-prompt")]
  .every(el => /^\\[\\d+\\]:$/.test(el.innerText.trim()))
"""
# Outputs a class should never see: a Python traceback, or an error of the harness.
ERROR_OUTPUTS_JS = f"""
() => [...document.querySelectorAll(
    "{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
  .map(el => el.innerText.slice(0, 300))
"""


# --- fixtures -------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser, jupyter_server: JupyterServer) -> AsyncIterator[BrowserContext]:
    """A browser context of its own per test; the test's kernels are shut down after it."""
    context = await browser.new_context(viewport=VIEWPORT)
    yield context
    await context.close()
    await asyncio.to_thread(jupyter_server.shutdown_sessions)


async def open_lab(
    context: BrowserContext, server: JupyterServer, name: str, wide: bool = True
) -> ChatNotebook:
    page = await context.new_page()
    await install_sentinel(page)
    notebook = ChatNotebook(page, server, "lab", name)
    await notebook.open()
    if wide:
        await notebook.widen()
    return notebook


async def open_shipped(
    context: BrowserContext, server: JupyterServer, filename: str
) -> tuple[Path, ChatNotebook]:
    """A copy of one of the shipped notebooks (``run-all-<filename>``), open in JupyterLab."""
    name = f"run-all-{filename}"
    path = shutil.copyfile(NOTEBOOKS / filename, server.root_dir / name)
    return path, await open_lab(context, server, name)


def cell_index(path: Path, source_start: str) -> int:
    """The index (among all cells, as the page numbers them) of the code cell that starts
    with ``source_start``."""
    cells = nbformat.read(path, as_version=4).cells
    (index,) = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "code" and c.source.startswith(source_start)
    ]
    return index


async def run_all(notebook: ChatNotebook, answers: int) -> list[str]:
    """Run All through JupyterLab's own command; wait until every code cell has run, the
    kernel is idle and ``answers`` answers have ended. Returns their states."""
    page = notebook.page
    await page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    states: list[str] = []

    async def finished() -> bool:
        if not await page.evaluate(ALL_RAN_JS) or await notebook.kernel_status() != "idle":
            return False
        states[:] = await page.evaluate(ANSWER_STATES_JS)
        return len(states) >= answers and all(s in ("done", "stopped", "error") for s in states)

    try:
        await wait_until(finished, RUN_ALL_TIMEOUT_MS, "Run All did not finish")
    except TimeoutError:
        raise TimeoutError(f"Run All did not finish: answers {states}") from None
    return states


async def text_of(notebook: ChatNotebook, index: int) -> str:
    return await notebook.output_text(index)


# --- Run All, each shipped notebook -----------------------------------------------------------

# What the raw-events panel of a streaming answer shows, at every animation frame: whether
# its newest event is in view, whether its first is, and how far it overflows.
EVENTS_WATCH_JS = """
cell => {
  const seen = window.__ipyllm_panel = {frames: 0, overflowing: 0, newestHidden: [],
                                         firstShown: 0, atEnd: 0, maxEvents: 0};
  const inView = (el, box) => {
    const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    return r.bottom > b.top + 1 && r.top < b.bottom - 1;
  };
  const watch = () => {
    const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
    const streaming = live?.querySelector(".ipyllm-status.ipyllm-state-streaming");
    const box = live?.querySelector(".ipyllm-raw-scroll");
    const events = box ? box.querySelectorAll(".ipyllm-raw-event") : [];
    if (streaming && box && events.length) {
      seen.frames += 1;
      seen.maxEvents = Math.max(seen.maxEvents, events.length);
      if (box.scrollHeight > box.clientHeight + 20) {
        seen.overflowing += 1;
        const newest = events[events.length - 1];
        if (!inView(newest, box) && seen.newestHidden.length < 5) {
          seen.newestHidden.push({events: events.length, scrollTop: box.scrollTop,
                                  scrollHeight: box.scrollHeight, clientHeight: box.clientHeight});
        }
        if (inView(events[0], box)) seen.firstShown += 1;
        // column-reverse: the end of the panel is scrollTop 0.
        if (Math.abs(box.scrollTop) <= 1) seen.atEnd += 1;
      }
    }
    requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
}
"""


async def test_teaching_notebook_under_run_all(
    context: BrowserContext, jupyter_server: JupyterServer
) -> None:
    path, notebook = await open_shipped(context, jupyter_server, "teaching-streaming.ipynb")
    cells = {
        "bytes": cell_index(path, "import json"),
        "events": cell_index(path, "%%chat -p openai --base-url {url}/v1 --events"),
        "formats": cell_index(path, "formats = ipyllm.compare("),
        "plot": cell_index(path, "import asyncio"),
        "429": cell_index(path, "%%chat -p openai --base-url {url}/with/status=429"),
        "retries": cell_index(path, "transcript = await retried"),
        "401": cell_index(path, "%%chat -p anthropic --base-url {url}/with/status=401"),
        "mid-stream": cell_index(path, "%%chat -p openai --base-url {url}/with/error_after"),
        "dropped": cell_index(path, "%%chat -p openai --base-url {url}/with/drop_after"),
        "stop": cell_index(path, "answer = ipyllm.stream("),
    }
    events_cell = await notebook.cell(cells["events"]).element_handle()
    await notebook.page.evaluate(EVENTS_WATCH_JS, events_cell)

    # 1 %%chat --events, 3 side by side, 4 lessons of section 6.
    states = await run_all(notebook, answers=8)
    assert sorted(states) == sorted(["done"] * 5 + ["error"] * 3), states
    assert await notebook.page.evaluate(ERROR_OUTPUTS_JS) == []

    # The bytes: the data: framing, the blank line that ends each event, each delta.
    wire = await text_of(notebook, cells["bytes"])
    assert '"delta": {"content": "##"} …}\\n\\n' in wire and "data: [DONE]\\n\\n" in wire
    # The raw events, next to an answer on the question asked.
    events = await notebook.chat_state(cells["events"])
    assert events.state == "done" and events.body.startswith("Streaming"), events
    # While it streamed, its panel showed its newest events, not its first ones.
    panel: dict[str, Any] = await notebook.page.evaluate("() => window.__ipyllm_panel")
    assert panel["maxEvents"] >= 100 and panel["overflowing"] >= 10, panel
    assert panel["newestHidden"] == [] and panel["firstShown"] == 0, panel
    assert panel["atEnd"] == panel["overflowing"], panel
    # The three formats side by side, each with its own events.
    formats = await text_of(notebook, cells["formats"])
    assert "message_start" in formats and '"done":true' in formats and "[DONE]" in formats
    assert await notebook.outputs(cells["plot"]).locator("img").count() == 1
    plot = await text_of(notebook, cells["plot"])
    assert "a 1.5 s stall after 40 tokens" in plot and "behind a buffering proxy" in plot

    # Section 6: what each fault shows, as a headless run shows it.
    retried = await notebook.chat_state(cells["429"])
    assert retried.state == "done" and "1 retry" in retried.status, retried
    assert "could not reach" not in retried.text
    assert await text_of(notebook, cells["retries"]) == "retries: 1 - status: done"
    refused = await notebook.chat_state(cells["401"])
    assert refused.state == "error" and "HTTP 401" in refused.text, refused
    assert "Set ANTHROPIC_API_KEY in the environment the kernel started from" in refused.text
    broken = await notebook.chat_state(cells["mid-stream"])
    assert broken.state == "error" and "mid-stream" in broken.text and broken.body, broken
    dropped = await notebook.chat_state(cells["dropped"])
    assert dropped.state == "error" and dropped.body, dropped
    assert "closed before the answer was complete" in dropped.text, dropped
    stop = await text_of(notebook, cells["stop"])
    assert "- stopped" in stop and "disconnect" in stop
    assert await page_report(notebook.page) == CLEAN


async def test_quickstart_under_run_all(
    context: BrowserContext, jupyter_server: JupyterServer
) -> None:
    path, notebook = await open_shipped(context, jupyter_server, "quickstart.ipynb")
    states = await run_all(notebook, answers=5)
    assert states == ["done"] * 5, states
    assert await notebook.page.evaluate(ERROR_OUTPUTS_JS) == []
    follow_up = await notebook.chat_state(cell_index(path, "%%chat\nCan you show"))
    assert "Turn 2" in follow_up.body  # the first answer had ended: sent as history
    cut = await text_of(notebook, cell_index(path, "transcript = await answer"))
    assert cut.startswith("length - ")
    filled = await notebook.chat_state(cell_index(path, "%%chat --no-history\nExplain {topic}"))
    assert "binary search" in filled.body.lower()
    # %chat history, rendered: its turns are headings.
    history = notebook.outputs(cell_index(path, "%chat history"))
    headings = [h.strip("¶ \n") for h in await history.locator("h2").all_inner_texts()]
    turns = [h for h in headings if h.startswith("Turn ")]
    assert turns[0] == "Turn 1" and turns[1].startswith("Turn 2"), headings
    assert await page_report(notebook.page) == CLEAN


async def test_report_example_under_run_all(
    context: BrowserContext, jupyter_server: JupyterServer
) -> None:
    path, notebook = await open_shipped(context, jupyter_server, "report-example.ipynb")
    states = await run_all(notebook, answers=2)
    assert states == ["done", "done"], states
    assert await notebook.page.evaluate(ERROR_OUTPUTS_JS) == []
    views = [
        i
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells)
        if cell.cell_type == "code" and "ChatView(" in cell.source
    ]
    commentary, findings = [await notebook.chat_state(i) for i in views]
    assert "Mean and variance" in commentary.body, commentary
    assert "+13.3%" in findings.body and "south" in findings.body, findings
    assert await page_report(notebook.page) == CLEAN


# --- four answers growing above the reader ---------------------------------------------------

# Where the reader's cell sits in the viewport at every animation frame for ``ms``: the
# smallest and largest getBoundingClientRect().top, and how many frames were seen.
TRACK_TOP_JS = """
([cell, ms]) => new Promise(resolve => {
  const tops = [];
  const start = performance.now();
  const frame = now => {
    tops.push(cell.getBoundingClientRect().top);
    if (now - start < ms) requestAnimationFrame(frame);
    else resolve({first: tops[0], min: Math.min(...tops), max: Math.max(...tops),
                  frames: tops.length});
  };
  requestAnimationFrame(frame);
})
"""
# The length of the text of every live answer in the notebook, and its height in px.
LIVE_LENGTHS_JS = f"""
() => [...document.querySelectorAll("{PANEL} .ipyllm:not(.ipyllm-static) .ipyllm-body")]
  .filter(el => el.checkVisibility()).map(el => el.textContent.length)
"""
LIVE_HEIGHTS_JS = f"""
() => [...document.querySelectorAll("{PANEL} .ipyllm:not(.ipyllm-static)")]
  .filter(el => el.checkVisibility()).map(el => el.getBoundingClientRect().height)
"""


@pytest.fixture(scope="module")
def slow_server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as server:
        yield server


@pytest.mark.parametrize("windowing", ["contentVisibility", "full"])
async def test_answers_growing_above_do_not_move_the_reader(
    context: BrowserContext,
    jupyter_server: JupyterServer,
    slow_server: ServerThread,
    windowing: str,
) -> None:
    """Four long answers (4,000 words at 100 tokens a second) stream above the cell a reader
    looks at: that cell moves less than 50 px in 4 s, with JupyterLab's default windowing
    (the browser anchors the scroll) and with "full" windowing (it does not: each live
    view is bounded and follows its end)."""
    fast = f"{slow_server.url}/with/rate=100,latency=0,words=4000/v1"
    sources = [
        f"%load_ext ipyllm\n%config Chat.provider = 'openai'\n%config Chat.history = False\n"
        f"fast = {fast!r}",
        *(f"%%chat --base-url $fast\nTell me a long story, number {n}." for n in range(1, 5)),
        "reading = 'the reader is here'\nreading",
        *(f"# more of the notebook, below ({n})" for n in range(4)),
    ]
    name = f"reader-stays-{windowing}.ipynb"
    write_notebook(jupyter_server.root_dir / name, sources)
    with frontend_settings(jupyter_server, windowingMode=windowing):
        notebook = await open_lab(context, jupyter_server, name)
    try:
        reader = 5
        since = len(slow_server.app.log)
        for index in range(reader + 1):
            await notebook.run_cell(index)
        # Every answer is long already (2,000 characters, a screen of text) and growing.
        try:
            await wait_until(lambda: _all_longer_than(notebook, 2000), 60_000, "")
        except TimeoutError:
            lengths = await notebook.page.evaluate(LIVE_LENGTHS_JS)
            raise TimeoutError(f"the answers did not grow: {lengths}") from None
        cell = await notebook.cell(reader).element_handle()
        await cell.evaluate("cell => cell.scrollIntoView({block: 'center'})")
        heights_before = await notebook.page.evaluate(LIVE_HEIGHTS_JS)
        lengths_before = await notebook.page.evaluate(LIVE_LENGTHS_JS)
        moved = await notebook.page.evaluate(TRACK_TOP_JS, [cell, 4000])
        heights_after = await notebook.page.evaluate(LIVE_HEIGHTS_JS)
        lengths_after = await notebook.page.evaluate(LIVE_LENGTHS_JS)
        # All four were streaming all along (under "full" windowing, cells out of view are
        # not in the page: the server says it).
        assert len(_open_streams(slow_server, since)) == 4
        if len(lengths_after) == len(lengths_before):  # under "full" the page holds fewer
            assert all(b > a for a, b in zip(lengths_before, lengths_after, strict=True))
        movement = max(abs(moved["max"] - moved["first"]), abs(moved["min"] - moved["first"]))
        print(
            f"{windowing}: the reader moved {movement:.0f} px in 4 s while the answers grew "
            f"by {sum(lengths_after) - sum(lengths_before)} characters; heights "
            f"{[round(h) for h in heights_before]} -> {[round(h) for h in heights_after]}"
        )
        assert moved["frames"] >= 40, moved
        assert movement < 50, (moved, heights_before, heights_after)
    finally:
        await asyncio.to_thread(shutdown_session, jupyter_server, name)


@contextmanager
def frontend_settings(server: JupyterServer, **values: object) -> Iterator[None]:
    """JupyterLab's notebook settings changed for the pages opened inside this block (a
    page reads them as it loads), the harness's own restored after."""
    settings = (
        server.root_dir.parent / "settings" / "@jupyterlab/notebook-extension/tracker"
    ).with_suffix(".jupyterlab-settings")
    saved = settings.read_text()
    settings.write_text(json.dumps({**json.loads(saved), **values}))
    try:
        yield
    finally:
        settings.write_text(saved)


async def _all_longer_than(notebook: ChatNotebook, characters: int) -> bool:
    """Every answer the page holds is longer than that (under "full" windowing, the page
    holds only the cells near the viewport)."""
    lengths = await notebook.page.evaluate(LIVE_LENGTHS_JS)
    return len(lengths) >= 2 and all(n > characters for n in lengths)


def _open_streams(server: ServerThread, since: int) -> set[int]:
    """The requests since record ``since`` that the server is still answering."""
    records = server.app.log[since:]
    ended = {r["id"] for r in records if r["event"] != "request"}
    return {r["id"] for r in records if r["event"] == "request" and r["id"] not in ended}


# --- the stopped and the error state, light and dark; math while streaming -------------------

# The WCAG contrast ratio of an element's text against the background it is drawn on (the
# first ancestor with an opaque background colour).
CONTRAST_JS = """
el => {
  const rgb = text => text.match(/[\\d.]+/g).map(Number);
  const background = node => {
    for (; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
      if (a > 0.99) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const fg = luminance(rgb(getComputedStyle(el).color));
  const bg = luminance(background(el));
  return {ratio: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05),
          color: getComputedStyle(el).color, text: el.innerText.slice(0, 80)};
}
"""
LIVE = ".ipyllm:not(.ipyllm-static)"


async def change_theme(notebook: ChatNotebook, theme: str, light: bool) -> None:
    await notebook.page.evaluate(
        "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    await notebook.page.wait_for_function(
        f"() => document.body.dataset.jpThemeLight === '{str(light).lower()}'", timeout=30_000
    )


async def screenshot(notebook: ChatNotebook, index: int, name: str) -> Path:
    """A PNG of one cell in artifacts/screenshots/; with IPYLLM_UPDATE_DOCS=1, in
    docs/screenshots/ too."""
    await notebook.page.mouse.move(0, 0)  # no hover effects in the picture
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOT_DIR / f"lab-{name}.png"
    await notebook.cell(index).screenshot(path=target, animations="disabled")
    if os.environ.get("IPYLLM_UPDATE_DOCS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS_SCREENSHOTS / f"{name}.png")
    return target


async def test_stopped_and_error_states_light_and_dark_with_math_typeset_live(
    context: BrowserContext, jupyter_server: JupyterServer, slow_server: ServerThread
) -> None:
    """A stopped answer and a failed one, in JupyterLab's light and dark themes: pictures for
    the docs, and the error red at 4.5:1 or more against its background in both. Math is
    typeset while the answer streams, as soon as its delimiters close, and stays typeset in
    the stopped answer."""
    url = slow_server.url
    sources = [
        "%load_ext ipyllm\n%config Chat.provider = 'openai'\n%config Chat.history = False",
        f"%%chat --base-url {url}/with/rate=8,latency=0/v1\nExplain streaming to a class.",
        f"%%chat --base-url {url}/with/error_after=30,rate=100/v1\nTell me a long story.",
    ]
    stopped, failed = 1, 2
    name = "looks.ipynb"
    write_notebook(jupyter_server.root_dir / name, sources)
    notebook = await open_lab(context, jupyter_server, name)
    try:
        for index in range(3):
            await notebook.run_cell(index)
        # While it streams: the formula of its third paragraph, closed, is typeset in the
        # live tail (checked at every frame: the tail moves on within a second or two).
        await notebook.wait_for_chat(
            stopped,
            f"""cell.querySelector("{LIVE} .ipyllm-status.ipyllm-state-streaming")
                && cell.querySelector("{LIVE} .ipyllm-tail mjx-container")""",
            raf=True,
        )
        # Stopped inside the list after it: the partial answer keeps its math.
        await notebook.wait_for_output_text(stopped, "a blank line")
        await notebook.click_output_button(stopped, "Stop")
        state = await notebook.wait_ended(stopped)
        assert state.state == "stopped" and "partial answer kept" in state.status, state
        assert await notebook.cell(stopped).locator(f"{LIVE} mjx-container").count() >= 1
        assert "$" not in state.body and "frac" not in state.body, state.body
        error = await notebook.wait_ended(failed)
        assert error.state == "error" and error.body, error  # the text before it is kept

        for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
            await change_theme(notebook, theme, light)
            suffix = "light" if light else "dark"
            await screenshot(notebook, stopped, f"stopped-{suffix}")
            await screenshot(notebook, failed, f"error-{suffix}")
            for selector in (".ipyllm-error", ".ipyllm-status.ipyllm-state-error"):
                shown = notebook.cell(failed).locator(f"{LIVE} {selector}")
                contrast = await shown.evaluate(CONTRAST_JS)
                print(f"{theme}: {selector} {contrast['color']} at {contrast['ratio']:.2f}:1")
                assert contrast["ratio"] >= 4.5, (theme, selector, contrast)
            # The stop reads neutral: no error red on it.
            note = notebook.cell(stopped).locator(f"{LIVE} .ipyllm-stopped")
            assert (await note.evaluate(CONTRAST_JS))["ratio"] >= 4.5
        assert await page_report(notebook.page) == CLEAN
    finally:
        await change_theme(notebook, "JupyterLab Light", True)  # a setting: later pages too
        await asyncio.to_thread(shutdown_session, jupyter_server, name)
