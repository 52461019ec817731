"""%%chat seen by a person: JupyterLab 4 and Notebook 7 in chromium, against the teaching
server running in this process.

One notebook per frontend serves the first group of tests (a kernel started once): an answer
growing in place while the kernel stays idle, Stop, math and code, the raw-events panel, the
height limit, and finally save and reopen. Each answer is two outputs, its live widget and a
static fallback beside it; the page shows exactly one, the widget while its model lives, and
every frame is watched for that. The hostile corpus goes through %%chat in its own notebook,
replayed event by event, and is checked live, saved, reopened after a kernel restart (the
fallbacks shown) and exported.
Screenshots go to artifacts/screenshots/; IPYLLM_UPDATE_DOCS=1 also copies four of
JupyterLab's into docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from itertools import groupby, pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from ipyllm.server import ServerThread
from tests.browser.chat_helpers import (
    CLEAN,
    NOTHING_WRONG,
    WIDGET_MIME,
    ChatNotebook,
    ChatState,
    answer_in,
    assert_same_words,
    dom_violations,
    ended_count,
    fallback_html,
    full_answer,
    notebook_in_a_watched_page,
    prose_words,
    replay_url,
    request_id_after,
    shutdown_session,
    without_static_styles,
    words_of,
    write_hostile_fixtures,
)
from tests.browser.harness import (
    FRONTENDS,
    OUTPUT,
    Frontend,
    JupyterServer,
    install_sentinel,
    page_report,
    wait_until,
    write_notebook,
)
from tests.test_static_math import static_violations

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Tall enough for a whole finished answer in one cell screenshot.
VIEWPORT = {"width": 1000, "height": 1400}

# Prompts (each answer depends on its prompt only: history is off in this notebook).
STREAMED = "Explain streaming"
STOPPED = "What does the Stop button close?"
MATH = "Show me code, a table and the maths"
EVENTS = "Which events does the server send?"
SAVED = "What survives saving a notebook?"
SAVED_STOPPED = "And what survives a stop?"

# Cells of the shared notebook, by index.
STREAM, ONE_PLUS_ONE, STOP, STOP_CHECK, MATH_CELL, EVENTS_CELL = 1, 2, 3, 4, 5, 6
HEIGHT_CELL, SAVED_CELL, SAVED_STOP_CELL = 8, 10, 11
CHAT_CELLS = (STREAM, STOP, MATH_CELL, EVENTS_CELL, HEIGHT_CELL, SAVED_CELL, SAVED_STOP_CELL)


def chat_cells(server_url: str) -> list[str]:
    """The shared notebook: base URLs (pacing options) in variables, so inputs stay short."""

    def url(options: str) -> str:
        return f"{server_url}/with/{options}/v1"

    return [
        "%load_ext ipyllm\n"
        "%config Chat.provider = 'openai'\n"
        "%config Chat.history = False\n"
        f"streaming = {url('rate=15,latency=0.3')!r}\n"
        f"medium = {url('rate=40,latency=0.2')!r}\n"
        f"quick = {url('rate=100,latency=0,words=250')!r}\n"
        f"events = {url('rate=20,latency=0,words=40')!r}\n"
        f"long = {url('rate=80,latency=0,words=400')!r}\n"
        f"instant = {url('rate=0,latency=0')!r}\n"
        f"slow = {url('rate=5,latency=0')!r}",
        f"%%chat --base-url $streaming\n{STREAMED}",
        "1+1",
        f"%%chat --base-url $medium -o stopped\n{STOPPED}",
        "stopped.transcript.status, len(stopped.text)",
        f"%%chat --base-url $quick\n{MATH}",
        f"%%chat --base-url $events --events\n{EVENTS}",
        "%config Chat.max_height = '12em'",
        "%%chat --base-url $long\nA long answer about the height limit",
        "%config Chat.max_height = None",
        f"%%chat --base-url $instant\n{SAVED}",
        f"%%chat --base-url $slow\n{SAVED_STOPPED}",
    ]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("hostile-sse")
    return directory, write_hostile_fixtures(directory)


@pytest.fixture(scope="module")
def teaching(hostile_dir: tuple[Path, dict[str, str]]) -> Iterator[ServerThread]:
    """The teaching server, in a thread of this process (the kernels are other processes)."""
    with ServerThread(token_rate=0, first_token_latency=0, fixtures_dir=hostile_dir[0]) as server:
        yield server


@pytest.fixture(scope="module", params=FRONTENDS)
def chat_frontend(request: pytest.FixtureRequest) -> Frontend:
    return request.param  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def chat(
    browser: Browser, jupyter_server: JupyterServer, teaching: ServerThread, chat_frontend: Frontend
) -> AsyncIterator[ChatNotebook]:
    """The shared notebook, opened once per frontend (one kernel for the tests that use it)."""
    async with notebook_in_a_watched_page(
        ChatNotebook,
        browser,
        jupyter_server,
        chat_frontend,
        f"chat-{chat_frontend}.ipynb",
        chat_cells(teaching.url),
        VIEWPORT,
    ) as notebook:
        yield notebook


# --- one notebook per frontend --------------------------------------------------------------


async def test_answer_grows_in_place_while_kernel_idle(chat: ChatNotebook) -> None:
    await chat.run_cell(STREAM)  # returns at once: the answer streams in the background
    samples: list[ChatState] = []
    deadline = time.monotonic() + 10
    while len({s.body for s in samples}) < 5:
        state = await chat.chat_state(STREAM)
        if not samples or state != samples[-1]:
            samples.append(state)
        assert time.monotonic() < deadline, f"the answer did not grow: {samples}"
        await asyncio.sleep(0.03)

    first = samples[0]
    assert (first.spinner and "waiting for the first token" in first.status) or first.body
    # One output shown, the live widget; its fallback (once displayed) beside it, hidden.
    assert all(s.shown_outputs == 1 and s.live for s in samples), samples
    assert all(s.fallback_hidden for s in samples if s.fallback), samples
    assert samples[-1].fallback and samples[-1].outputs == 2, samples[-1]
    bodies = [body for body, _ in groupby(s.body for s in samples) if body]
    for earlier, later in pairwise(bodies):
        assert later.startswith(earlier) and len(later) > len(earlier), bodies
    whole = prose_words(full_answer(STREAMED))
    assert words_of(bodies[-1]) == whole[: len(words_of(bodies[-1]))], bodies[-1]
    assert any(s.stop_enabled and "streaming" in s.status for s in samples), samples
    assert await chat.kernel_status() == "idle"

    await chat.run_cell(ONE_PLUS_ONE)
    assert await chat.output_text(ONE_PLUS_ONE) == "2"
    state = await chat.chat_state(STREAM)
    assert state.live and "streaming" in state.status, "the answer ended before 1+1 ran"
    assert state.shown_outputs == 1 and state.fallback_hidden, state
    # This answer goes on for ~20 s while the next tests run; test_saved_and_reopened
    # checks how it ended.


async def test_stop_closes_the_connection_and_keeps_the_partial_answer(
    chat: ChatNotebook, teaching: ServerThread
) -> None:
    since = len(teaching.app.log)
    await chat.run_cell(STOP)
    request_id = await request_id_after(teaching, since)
    # Mid-stream, once the code block has started: the picture of a stream in progress.
    await chat.wait_for_chat(
        STOP, 'cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body pre.ipyllm-code")'
    )
    assert (await chat.chat_state(STOP)).stop_enabled
    await chat.shoot("streaming", STOP, docs_name="streaming.png")

    clicked = time.time()
    await chat.click_output_button(STOP, "Stop")
    disconnect = await asyncio.to_thread(
        teaching.app.wait_for,
        lambda r: r["id"] == request_id and r["event"] in ("disconnect", "complete"),
        5.0,
    )
    assert disconnect is not None and disconnect["event"] == "disconnect", disconnect
    assert disconnect["time"] - clicked < 1.0, disconnect["time"] - clicked

    state = await chat.wait_ended(STOP)
    assert state.live and state.shown_outputs == 1 and state.fallback_hidden, state
    assert "stopped" in state.status and "partial answer kept" in state.status
    assert "Stopped: the answer above is partial." in state.text
    # The fallback's record of the answer (text/plain) is a prefix of the whole answer.
    widget, output = await chat.output_model(STOP)
    assert WIDGET_MIME in widget["data"] and WIDGET_MIME not in output["data"]
    assert state.fallback_state == "stopped"
    plain: str = output["data"]["text/plain"]
    partial = answer_in(plain)
    whole = full_answer(STOPPED)
    assert 0 < len(partial) < len(whole) and whole.startswith(partial), partial
    assert output["metadata"]["ipyllm"]["status"] == "stopped"
    # And the page shows it: its words, in order, up to where the answer was stopped.
    shown = words_of(state.body)
    assert shown and shown == prose_words(partial), (shown, partial)
    await chat.shoot("stopped", STOP, docs_name="stopped.png")

    assert await chat.kernel_status() == "idle"
    await chat.run_cell(STOP_CHECK)
    assert await chat.output_text(STOP_CHECK) == f"('stopped', {len(partial)})"


async def test_math_and_code_typeset_live_and_static(chat: ChatNotebook) -> None:
    answer = full_answer(MATH, words=250)
    assert "```python" in answer and "\n$$\n" in answer and "|:---|" in answer
    assert re.search(r"[^$]\$[^$\n]+\$", answer), "no inline math in the demo answer"

    await chat.run_cell(MATH_CELL)
    # While it streams: MathJax has typeset inline and display math in the widget, and the
    # code block is highlighted (checked at every frame: the live view lasts ~4 s).
    await chat.wait_for_chat(
        MATH_CELL,
        """(() => {
          const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
          return live
            && live.querySelector(".widget-htmlmath mjx-container:not([display=true])")
            && live.querySelector(".widget-htmlmath mjx-container[display=true]")
            && live.querySelector(".ipyllm-body pre.ipyllm-code span.k")
            // as wide as the answer, as in the static copy (not shrunk to its longest line)
            && live.querySelector(".ipyllm-body pre.ipyllm-code").getBoundingClientRect().width
               > 0.9 * live.querySelector(".ipyllm-body").clientWidth;
        })()""",
        raf=True,
    )
    assert (await chat.chat_state(MATH_CELL)).live

    state = await chat.wait_ended(MATH_CELL)
    assert "done" in state.status and state.live
    # The final live view: math typeset, code highlighted, the table.
    live = chat.output_area(MATH_CELL).locator(".ipyllm:not(.ipyllm-static)")
    assert await live.locator("mjx-container[display=true]").count() == 1
    assert await live.locator(".ipyllm-body pre.ipyllm-code span.k").count() >= 1
    assert await live.locator(".ipyllm-body table tbody tr").count() == 3
    # The static fallback (hidden here; what a page shows after a kernel restart) too.
    static = chat.output_area(MATH_CELL).locator(".ipyllm-static")
    assert await static.locator("mjx-container:not([display=true])").count() >= 3
    assert await static.locator("mjx-container[display=true]").count() == 1
    assert await static.locator(".ipyllm-md pre.ipyllm-code span.k").count() >= 1
    assert await static.locator(".ipyllm-md table tbody tr").count() == 3
    # Nothing of the raw TeX is left: every formula was typeset.
    assert "$" not in state.body and "\\frac" not in state.body
    # JupyterLab's rendered-HTML rules must not win over the answer's own: code lines on the
    # block's background, and the table's alignment row obeyed.
    looks = await static.evaluate(
        """el => ({
          code: getComputedStyle(el.querySelector("pre.ipyllm-code code")).backgroundColor,
          aligns: [...el.querySelectorAll("table tbody tr:first-child td")]
            .map(td => getComputedStyle(td).textAlign),
        })"""
    )
    assert looks == {"code": "rgba(0, 0, 0, 0)", "aligns": ["left", "right", "center"]}, looks
    await chat.shoot("finished", MATH_CELL, docs_name="finished.png")


async def test_raw_events_panel(chat: ChatNotebook) -> None:
    await chat.run_cell(EVENTS_CELL)
    await chat.wait_for_chat(
        EVENTS_CELL,
        'cell.querySelectorAll(".ipyllm:not(.ipyllm-static) .ipyllm-raw-event").length >= 15',
    )
    raw = chat.output_area(EVENTS_CELL).locator(".ipyllm:not(.ipyllm-static) .ipyllm-raw")
    assert await raw.is_visible()
    texts = await raw.locator(".ipyllm-raw-event").all_inner_texts()
    assert all(re.match(r"^\s*\d+\.\d ms ", text) for text in texts), texts[:3]
    assert sum('"object":"chat.completion.chunk"' in text for text in texts) >= 14, texts[:3]
    # Lines of an event as close as the font needs (not ipywidgets' 28 px control height).
    spacing = await raw.locator(".ipyllm-raw-event").first.evaluate(
        "el => { const style = getComputedStyle(el);"
        " return parseFloat(style.lineHeight) / parseFloat(style.fontSize); }"
    )
    assert spacing < 1.6, spacing
    await chat.shoot("events", EVENTS_CELL, docs_name="events.png")
    state = await chat.wait_ended(EVENTS_CELL)
    assert "done" in state.status and state.shown_outputs == 1 and state.live


SCROLL_JS = """
cell => {
  const box = cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body");
  if (!box) return null;
  const content = box.firstElementChild.getBoundingClientRect();
  const frame = box.getBoundingClientRect();
  const visibleBottom = frame.top + box.clientTop + box.clientHeight;
  return {
    scrollTop: box.scrollTop, scrollHeight: box.scrollHeight, clientHeight: box.clientHeight,
    below: content.bottom - visibleBottom,  // content hidden below the visible part, in px
    contentTop: content.top - frame.top,  // where the content sits in the scroller's frame
  };
}
"""


async def test_height_limit_follows_new_text_until_the_reader_scrolls_up(
    chat: ChatNotebook,
) -> None:
    await chat.run_cell(HEIGHT_CELL - 1)  # %config Chat.max_height = '12em'
    await chat.run_cell(HEIGHT_CELL)
    await chat.run_cell(HEIGHT_CELL + 1)  # back to no limit
    cell = await chat.cell(HEIGHT_CELL).element_handle()

    async def scroll() -> dict:
        return await cell.evaluate(SCROLL_JS)

    await chat.wait_for_chat(
        HEIGHT_CELL,
        """(() => { const box = cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body");
                    return box && box.scrollHeight > box.clientHeight + 100; })()""",
    )
    first = await scroll()
    font_px = await cell.evaluate(
        """cell => parseFloat(getComputedStyle(cell.querySelector(".ipyllm-body")).fontSize)"""
    )
    assert abs(first["clientHeight"] - 12 * font_px) < 2, (first, font_px)

    # As it grows, the newest text stays in view.
    followed = [first]
    deadline = time.monotonic() + 10
    while len(followed) < 5 and time.monotonic() < deadline:
        now = await scroll()
        if now["scrollHeight"] > followed[-1]["scrollHeight"]:
            followed.append(now)
        await asyncio.sleep(0.03)
    assert len(followed) == 5, followed
    assert all(abs(s["below"]) <= 1 for s in followed), followed

    # The reader scrolls up into text that has settled (three wheel notches): new text
    # arrives below, and the view stays where the reader put it.
    await chat.wait_for_chat(
        HEIGHT_CELL,
        """(() => { const box = cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body");
                    return box && box.scrollHeight > box.clientHeight + 500; })()""",
    )
    box = chat.output_area(HEIGHT_CELL).locator(".ipyllm:not(.ipyllm-static) .ipyllm-body")
    await box.evaluate(
        "box => { window.__ipyllm_scrolled = false;"
        " box.addEventListener('scrollend', () => { window.__ipyllm_scrolled = true; },"
        " {once: true}); }"
    )
    await box.hover()
    await chat.page.mouse.wheel(0, -360)  # animated: wait until it has come to rest
    await chat.page.wait_for_function("() => window.__ipyllm_scrolled", timeout=5_000)
    anchor = await scroll()
    assert anchor["below"] > 250, anchor
    watched = [anchor]
    while watched[-1]["scrollHeight"] < anchor["scrollHeight"] + 150:
        await asyncio.sleep(0.03)
        later = await scroll()
        assert later is not None, "the answer ended before it grew past the scrolled view"
        watched.append(later)
    moved = [round(s["contentTop"] - anchor["contentTop"]) for s in watched]
    assert all(abs(m) <= 1 for m in moved), (moved, anchor, watched[-1])
    assert watched[-1]["below"] >= anchor["below"] + 150, (anchor, watched[-1])

    await chat.click_output_button(HEIGHT_CELL, "Stop")
    state = await chat.wait_ended(HEIGHT_CELL)
    assert "stopped" in state.status


async def test_saved_and_reopened(chat: ChatNotebook) -> None:
    # Its own two answers (so this test stands alone): one finished, one stopped.
    await chat.run_cell(SAVED_CELL)
    await chat.run_cell(SAVED_STOP_CELL)
    await chat.wait_for_chat(
        SAVED_STOP_CELL, 'cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body")?.innerText'
    )
    await chat.click_output_button(SAVED_STOP_CELL, "Stop")
    answered = [i for i in CHAT_CELLS if (await chat.chat_state(i)).outputs]
    assert {SAVED_CELL, SAVED_STOP_CELL} <= set(answered)
    # Every answer started in this notebook has ended (the 20 s one of the first test too).
    await wait_until(
        lambda: _all_ended(chat, answered), 40_000, "an answer was still streaming after 40 s"
    )
    before = {i: await chat.output_model(i) for i in answered}
    first_page = await chat.frame_problems()

    saved = await chat.save()
    for index in answered:
        widget, output = saved.cells[index].outputs
        # The live output keeps only the widget's reference (and its text/plain): no answer.
        assert widget["output_type"] == "display_data"
        assert set(widget["data"]) == {WIDGET_MIME, "text/plain"}, widget
        assert output["output_type"] == "display_data"
        assert {"text/html", "text/markdown", "text/plain"} <= set(output["data"])
        assert WIDGET_MIME not in output["data"]
        assert output["data"]["text/plain"] == before[index][1]["data"]["text/plain"]
        assert output["metadata"]["ipyllm"]["status"] in ("done", "stopped")
        answer_id = output["metadata"]["ipyllm_fallback"]
        fallback_html(answer_id, output["data"]["text/html"])  # marked as its answer's fallback
    assert saved.cells[SAVED_CELL].outputs[1]["metadata"]["ipyllm"]["status"] == "done"
    assert saved.cells[SAVED_STOP_CELL].outputs[1]["metadata"]["ipyllm"]["status"] == "stopped"
    if STREAM in answered:
        assert saved.cells[STREAM].outputs[1]["data"]["text/plain"].endswith(full_answer(STREAMED))

    # Reopened while the kernel lives: every answer is its live widget again, final.
    await chat.reopen()
    await chat.widen()
    await wait_until(lambda: _all_ended(chat, answered), 30_000, "the live views were not restored")
    await _settle(chat.page)
    assert await chat.trusted()
    for index in answered:
        data = saved.cells[index].outputs[1]["data"]
        state = await chat.chat_state(index)
        assert state.live and state.shown_outputs == 1 and state.fallback_hidden, (index, state)
        status = data["text/plain"].split("\n\n", 1)[0]
        assert state.status == status
        assert_same_words(state.prose, answer_in(data["text/plain"]))
    assert (
        full_answer(SAVED).splitlines()[0].removeprefix("## ")
        in (await chat.chat_state(SAVED_CELL)).text
    )
    if MATH_CELL in answered:  # typeset again after reopening
        live = chat.output_area(MATH_CELL).locator(".ipyllm:not(.ipyllm-static)")
        assert await live.locator("mjx-container[display=true]").count()
    assert await chat.report() == CLEAN
    await chat.shoot("reopened", SAVED_CELL)
    # Never two views of an answer at once, nor none, nor a dead widget: in either page.
    assert first_page == NOTHING_WRONG, first_page
    assert await chat.frame_problems() == NOTHING_WRONG


async def _all_ended(chat: ChatNotebook, cells: list[int]) -> bool:
    return await ended_count(chat.page) == len(cells)


# --- hostile output, end to end -------------------------------------------------------------


# Two outputs an answer, each fallback re-rendered every 2 s while 37 answers stream, and a
# kernel restart before the reopen: on 2 busy cores this takes up to ~2 minutes.
@pytest.mark.timeout(300)
async def test_hostile_payloads_end_to_end(
    browser: Browser,
    jupyter_server: JupyterServer,
    teaching: ServerThread,
    hostile_dir: tuple[Path, dict[str, str]],
    chat_frontend: Frontend,
    tmp_path: Path,
) -> None:
    """Every payload of tests/corpus/hostile, streamed through %%chat piece by piece (3-8
    characters an event, ~25 events a second), checked while streaming, once finished (the
    live widgets and their hidden fallbacks, and the fallbacks' HTML), after save, kernel
    restart and reopen (the fallbacks shown), and (JupyterLab) in the HTML that nbconvert
    exports."""
    _, payloads = hostile_dir
    names = list(payloads)
    sources = ["%load_ext ipyllm"] + [
        f"%%chat -p openai --no-history --base-url {replay_url(teaching.url, name, 0.04)}\n"
        f"payload {name}"
        for name in names
    ]
    name = f"hostile-{chat_frontend}.ipynb"
    write_notebook(jupyter_server.root_dir / name, sources)
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await install_sentinel(page)
        notebook = ChatNotebook(page, jupyter_server, chat_frontend, name)
        await notebook.open()
        await notebook.run_cell(0)

        seen: list[str] = []
        live_checks = 0

        async def check_outputs() -> int:
            """Check the DOM of every output so far; return how many answers have ended."""
            nonlocal live_checks
            seen.extend(await notebook.dom_violations())
            streaming = ".jp-NotebookPanel .ipyllm:not(.ipyllm-static) .ipyllm-state-streaming"
            live_checks += await page.locator(streaming).count() > 0
            return await ended_count(page)

        # The cells one after another, so several streams overlap; between cells, the DOM of
        # every output so far is checked, so intermediate states are checked too.
        for index in range(1, len(sources)):
            await notebook.run_cell(index)
            await check_outputs()

        async def all_ended() -> bool:
            return await check_outputs() == len(names)

        try:
            await wait_until(all_ended, 30_000, "not every hostile answer finished")
        except TimeoutError:
            states = [await notebook.chat_state(i) for i in range(1, len(sources))]
            unfinished = {names[i]: s for i, s in enumerate(states) if s.state != "done"}
            raise TimeoutError(f"hostile answers not ended: {unfinished or states}") from None
        assert live_checks >= 20, live_checks  # most checks saw answers still streaming
        assert not seen, sorted(set(seen))
        assert await notebook.report() == CLEAN

        for index, file_name in enumerate(names, start=1):
            state = await notebook.chat_state(index)
            assert "done" in state.status and state.live, (file_name, state)
            assert state.shown_outputs == 1 and state.fallback_hidden, (file_name, state)
            widget, output = await notebook.output_model(index)
            assert set(widget["data"]) == {WIDGET_MIME, "text/plain"}, (file_name, widget)
            html = fallback_html(output["metadata"]["ipyllm_fallback"], output["data"]["text/html"])
            html = without_static_styles(html)
            assert not static_violations(html), (file_name, static_violations(html))
            plain = output["data"]["text/plain"]
            assert plain.split("\n\n", 1)[1] == payloads[file_name], file_name

        await notebook.save()
        # Reopened after a kernel restart: the widgets' models are gone, so the page shows the
        # saved fallbacks, the static copies (the live widgets' reopened page, with the kernel
        # alive, renders what the live checks above saw: test_saved_and_reopened covers it).
        await notebook.reopen(lambda: asyncio.to_thread(jupyter_server.restart_kernel, name))
        assert await notebook.trusted()  # saved by the frontend, so signed: the strict case
        await wait_until(
            lambda: _fallbacks_shown(notebook.page, len(names)), 30_000, "fallbacks not shown"
        )
        await _settle(notebook.page)
        assert await notebook.dom_violations() == []
        assert await notebook.report() == CLEAN

        if chat_frontend == "lab":
            html_file = await asyncio.to_thread(export_html, notebook.path, tmp_path)
            await check_exported_page(context, html_file, len(names))
    finally:
        await context.close()
        await asyncio.to_thread(shutdown_session, jupyter_server, name)


async def _fallbacks_shown(page: Page, expected: int) -> bool:
    shown = await page.evaluate(
        """() => [...document.querySelectorAll(".jp-NotebookPanel .ipyllm-static")]
                   .filter(el => el.checkVisibility()).length"""
    )
    return bool(shown == expected)


async def _settle(page: Page) -> None:
    """Wait until MathJax has typeset what it will: the count of its containers in the page
    has not changed for 300 ms."""
    counts: list[int] = []

    async def stable() -> bool:
        counts.append(await page.locator("mjx-container").count())
        await asyncio.sleep(0.05)
        return len(counts) >= 6 and len(set(counts[-6:])) == 1

    await wait_until(stable, 10_000, "MathJax kept typesetting")


def export_html(notebook: Path, out_dir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(notebook),
         "--output-dir", str(out_dir)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out_dir / (notebook.stem + ".html")


async def check_exported_page(context: BrowserContext, html_file: Path, expected: int) -> None:
    """The exported HTML as a file:// page: no script of the answers runs, nothing is loaded
    but the template's own scripts (MathJax, require.js; blocked here, so math stays TeX)."""
    page = await context.new_page()
    await install_sentinel(page)
    file_url = html_file.as_uri()
    # Allow this one file (the sentinel blocks everything that is not loopback).
    await page.route(re.compile("^" + re.escape(file_url) + "$"), lambda route: route.continue_())
    await page.goto(file_url)
    assert await page.locator(".ipyllm-static").count() == expected
    # Each answer's fallback is what the page shows; nothing of the widget output's stand-in.
    shown = await page.evaluate(
        """() => [...document.querySelectorAll(".ipyllm-static")]
                   .filter(el => el.checkVisibility()).length"""
    )
    assert shown == expected, (shown, expected)
    assert "live widget" not in await page.locator("body").inner_text()
    await _settle(page)
    text = html_file.read_text(encoding="utf-8")
    head = text[: text.index("<body")]
    template_scripts = set(re.findall(r'<script[^>]+src="([^"]+)"', head))
    report = await page_report(page)
    assert report["xss"] == 0 and report["dialogs"] == [], report
    assert set(report["foreign_requests"]) <= template_scripts, report  # type: ignore[arg-type]
    assert await dom_violations(page, OUTPUT) == []
    await page.close()
