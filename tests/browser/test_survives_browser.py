"""The answer survives the browser: reloads, closed tabs and kernel restarts, in JupyterLab 4
and Notebook 7 (chromium), against the teaching server running in this process.

An answer shown interactively is two outputs of its cell: the live widget, kept alive after
the answer ends, and a static fallback beside it, brought up to date while it streams. The
page must always show exactly one of them: the widget while its model lives in the kernel
(after a reload or a reopened tab too), the fallback where the widget cannot render (after a
kernel restart), never "model not found". A watcher checks that at every animation frame of
every page these tests open. Blocking mode (``--wait``) replaces the widget by the static copy
at the end, and that swap must not move the page.

One notebook per frontend, one kernel; the tests run in order on it, each with its own cells
and short answers paced by the teaching server. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

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
    full_answer,
    notebook_in_a_watched_page,
    prose_words,
    request_id_after,
    words_of,
)
from tests.browser.harness import (
    FRONTENDS,
    PANEL,
    Frontend,
    JupyterServer,
    wait_until,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Short enough that the notebook scrolls (the swap test centres a cell in it).
VIEWPORT = {"width": 1000, "height": 800}
WORDS = 60  # every answer's length (words= of the teaching server): 74 tokens
HEIGHT_TOLERANCE_PX = 4

# Prompts (each answer depends on its prompt only: history is off in this notebook).
RELOADED = "What does a reload keep?"
RELOAD_STOPPED = "Can I stop after a reload?"
UNSAVED = "What if the page was not saved?"
UNSAVED_STOPPED = "And can I stop it from elsewhere?"
REOPENED = "What does a reopened tab show?"
WAITED = "What does waiting for the answer look like?"
FINISHED = "How tall is a finished answer?"
RESTARTED = "What survives a kernel restart?"

# Cells, by index.
RELOAD_STOP, RELOAD, UNSAVED_STOP, UNSAVED_CELL, RUNNING = 1, 2, 3, 4, 5
REOPEN, WAIT, FINISH, RESTART = 6, 7, 8, 9


def cells(server_url: str) -> list[str]:
    def url(options: str) -> str:
        return f"{server_url}/with/{options},latency=0,words={WORDS}/v1"

    return [
        "%load_ext ipyllm\n"
        "%config Chat.provider = 'openai'\n"
        "%config Chat.history = False\n"
        f"steady = {url('rate=5')!r}\n"  # ~15 s: still streaming after a reload
        f"lasting = {url('rate=2')!r}\n"  # ~37 s: through a reload, %chat running and more
        f"endless = {url('rate=1')!r}\n"  # ~74 s: stopped long before its end
        f"quick = {url('rate=25')!r}",  # ~3 s
        f"%%chat --base-url $endless\n{RELOAD_STOPPED}",
        f"%%chat --base-url $steady\n{RELOADED}",
        f"%%chat --base-url $endless\n{UNSAVED_STOPPED}",
        f"%%chat --base-url $lasting\n{UNSAVED}",
        "%chat running",
        f"%%chat --base-url $steady\n{REOPENED}",
        f"%%chat --wait --base-url $quick\n{WAITED}",
        f"%%chat --base-url $quick\n{FINISHED}",
        f"%%chat --base-url $steady\n{RESTARTED}",
    ]


def expected_words(prompt: str) -> list[str]:
    return prose_words(full_answer(prompt, words=WORDS))


# --- fixtures -------------------------------------------------------------------------------


class Survive(ChatNotebook):
    """The notebook of this module, and what one test leaves for a later one."""

    shared: dict[str, Any]


@pytest.fixture(scope="module")
def teaching() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as server:
        yield server


@pytest.fixture(scope="module", params=FRONTENDS)
def survive_frontend(request: pytest.FixtureRequest) -> Frontend:
    return request.param  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notebook(
    browser: Browser,
    jupyter_server: JupyterServer,
    teaching: ServerThread,
    survive_frontend: Frontend,
) -> AsyncIterator[Survive]:
    """The module's notebook, opened once per frontend, every frame of its pages watched."""
    async with notebook_in_a_watched_page(
        Survive,
        browser,
        jupyter_server,
        survive_frontend,
        f"survive-{survive_frontend}.ipynb",
        cells(teaching.url),
        VIEWPORT,
    ) as survive:
        survive.shared = {}
        yield survive


# --- helpers --------------------------------------------------------------------------------


# Some of the answer is in the live view and in its (hidden) fallback: saving now keeps a
# partial answer.
PARTIAL_IN_BOTH = """(() => {
  const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
  const fallback = cell.querySelector("[data-ipyllm-fallback]");
  return live?.querySelector(".ipyllm-status.ipyllm-state-streaming")
    && live.querySelector(".ipyllm-body")?.innerText.trim()
    && fallback?.querySelector(".ipyllm-body")?.textContent.trim();
})()"""
# The live view is shown and its status says the answer ended.
LIVE_FINAL = """(() => {
  const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
  return live?.checkVisibility()
    && /ipyllm-state-(done|stopped|error)/.test(
      live.querySelector(".ipyllm-status")?.className ?? "");
})()"""
LIVE_SHOWN = """cell.querySelector(".ipyllm:not(.ipyllm-static)")?.checkVisibility()"""


async def start_partial(notebook: ChatNotebook, index: int, teaching: ServerThread) -> int:
    """Run a %%chat cell and wait until part of its answer is in both of its outputs; return
    the teaching server's id of its request."""
    since = len(teaching.app.log)
    await notebook.run_cell(index)
    request_id = await request_id_after(teaching, since)
    await notebook.wait_for_chat(index, PARTIAL_IN_BOTH)
    return request_id


async def save_partial(notebook: ChatNotebook, index: int) -> Any:
    """Save, and check the file holds the cell's two outputs mid-stream, some of the answer in
    its fallback; return the notebook saved."""
    saved = await notebook.save()
    widget, fallback = saved.cells[index].outputs
    assert set(widget["data"]) == {WIDGET_MIME, "text/plain"}, widget
    assert fallback["metadata"]["ipyllm"]["status"] == "streaming", fallback["metadata"]
    partial = answer_in(fallback["data"]["text/plain"])
    assert partial, fallback["data"]["text/plain"]
    return saved


def saved_status(saved: Any, index: int) -> str:
    """The status of the answer in a saved cell's fallback."""
    return str(saved.cells[index].outputs[1]["metadata"]["ipyllm"]["status"])


def assert_complete(state: ChatState, prompt: str) -> None:
    assert state.live and state.state == "done", state
    assert words_of(state.prose) == expected_words(prompt), state.body


def assert_partial(body: str, prompt: str) -> list[str]:
    """The words shown are the answer's first words, not all of them."""
    shown, whole = words_of(body), expected_words(prompt)
    assert 0 < len(shown) < len(whole) and whole[: len(shown)] == shown, (shown, whole)
    return shown


async def click_stop(view: Locator) -> None:
    await view.locator("button.ipyllm-stop").click()


async def wait_disconnect(teaching: ServerThread, request_id: int) -> dict[str, Any]:
    record = await asyncio.to_thread(
        teaching.app.wait_for,
        lambda r: r["id"] == request_id and r["event"] in ("disconnect", "complete"),
        5.0,
    )
    assert record is not None and record["event"] == "disconnect", record
    return record


# --- a. reload mid-stream, saved (and e. Stop after that reload) -----------------------------


async def test_reload_mid_stream_saved_shows_the_answer_live_to_its_end(
    notebook: Survive, teaching: ServerThread
) -> None:
    # Two answers streaming when the page reloads: this one, and the one the next test stops.
    notebook.shared["stop_request"] = await start_partial(notebook, RELOAD_STOP, teaching)
    await start_partial(notebook, RELOAD, teaching)
    saved = await save_partial(notebook, RELOAD)
    assert saved_status(saved, RELOAD_STOP) == "streaming"
    await notebook.reload()
    notebook.shared["reloaded"] = True
    await notebook.widen()
    # The widget is restored from the kernel, while the answer still streams or once ended.
    await notebook.wait_for_chat(RELOAD, LIVE_SHOWN)
    restored = await notebook.chat_state(RELOAD)
    print("restored while streaming:", restored.state == "streaming")  # for the CI log
    assert restored.shown_outputs == 1 and restored.fallback_hidden, restored
    # The page came from the file: its (hidden) fallback is the partial answer saved.
    saved_words = words_of(answer_in(saved.cells[RELOAD].outputs[1]["data"]["text/plain"]))
    assert words_of(restored.fallback_body) == saved_words, restored
    await notebook.wait_for_chat(RELOAD, LIVE_FINAL)
    state = await notebook.chat_state(RELOAD)
    assert_complete(state, RELOADED)
    assert state.shown_outputs == 1 and state.fallback_hidden and not state.stop_enabled, state
    assert await notebook.report() == CLEAN
    assert await notebook.frame_problems() == NOTHING_WRONG


@pytest.mark.xfail(
    strict=True,
    reason="known limit: display updates reach only the page that ran the cell, so a page "
    "that reloaded keeps the fallback it loaded (the live widget is complete; the copy that "
    "%chat running shows there ends final: test_stop_after_a_reload)",
)
async def test_fallback_is_final_after_a_reload(notebook: Survive) -> None:
    """After a reload the answer ended; saved now, the fallback (what a page shows after a
    kernel restart) holds the whole answer, not the part saved before the reload."""
    await notebook.wait_for_chat(RELOAD, LIVE_FINAL)
    saved = await notebook.save()
    _, fallback = saved.cells[RELOAD].outputs
    status = fallback["metadata"]["ipyllm"]["status"]
    shown = (await notebook.chat_state(RELOAD)).fallback_state
    assert (status, shown) == ("done", "done"), (status, shown, fallback["data"]["text/plain"])
    assert words_of(answer_in(fallback["data"]["text/plain"])) == expected_words(RELOADED)


async def test_stop_after_a_reload(notebook: Survive, teaching: ServerThread) -> None:
    """The other answer that streamed through the reload: its restored widget's Stop works."""
    if not notebook.shared.get("reloaded"):
        pytest.fail("the reload test did not reload the page")
    await notebook.wait_for_chat(
        RELOAD_STOP,
        """(() => { const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
                    return live?.checkVisibility()
                      && !live.querySelector("button.ipyllm-stop")?.disabled; })()""",
    )
    restored = await notebook.chat_state(RELOAD_STOP)
    assert restored.state == "streaming" and restored.stop_enabled, restored
    # %chat running in the reloaded page: its cell gets a copy that the answer's end reaches.
    answer_id = (
        await notebook.cell(RELOAD_STOP)
        .locator("[data-ipyllm-fallback]")
        .get_attribute("data-ipyllm-fallback")
    )
    await notebook.run_cell(RUNNING)
    await running_views(notebook, {RELOAD_STOP: str(answer_id)})
    live = notebook.output_area(RELOAD_STOP).locator(".ipyllm:not(.ipyllm-static)")
    await click_stop(live)
    await wait_disconnect(teaching, notebook.shared["stop_request"])
    await notebook.wait_for_chat(RELOAD_STOP, LIVE_FINAL)
    state = await notebook.chat_state(RELOAD_STOP)
    assert state.state == "stopped", state
    assert "stopped" in state.status and "partial answer kept" in state.status, state.status
    shown = assert_partial(state.prose, RELOAD_STOPPED)
    assert state.shown_outputs == 1 and state.fallback_hidden, state
    # Saved now: the cell of %chat running keeps the final copy, the answer's own cell the
    # copy the page loaded (the kernel's updates reach only cells this page ran).
    saved = await notebook.save()
    copies = [
        output
        for output in saved.cells[RUNNING].outputs
        if output.get("metadata", {}).get("ipyllm_fallback") == answer_id
    ]
    assert [copy["metadata"]["ipyllm"]["status"] for copy in copies] == ["stopped"], copies
    assert words_of(answer_in(copies[0]["data"]["text/plain"])) == shown
    assert saved_status(saved, RELOAD_STOP) == "streaming"
    assert await notebook.report() == CLEAN
    assert await notebook.frame_problems() == NOTHING_WRONG


# --- b. reload mid-stream, unsaved: %chat running ---------------------------------------------


async def test_reload_unsaved_then_chat_running_shows_the_running_answers(
    notebook: Survive, teaching: ServerThread
) -> None:
    ids = {}
    for index in (UNSAVED_STOP, UNSAVED_CELL):
        request_id = await start_partial(notebook, index, teaching)
        fallback = notebook.cell(index).locator("[data-ipyllm-fallback]")
        ids[index] = (await fallback.get_attribute("data-ipyllm-fallback"), request_id)
    await notebook.reload()  # not saved: the file has neither answer
    await notebook.widen()
    for index in (UNSAVED_CELL, UNSAVED_STOP):
        state = await notebook.chat_state(index)
        assert state.outputs == 0 and state.text == "", (index, state)

    await notebook.run_cell(RUNNING)
    answer_ids = {index: answer_id for index, (answer_id, _) in ids.items()}
    found = await running_views(notebook, answer_ids)
    for view in found.values():
        assert await view.is_visible()
    notebook.shared["running_ids"] = {UNSAVED_CELL: ids[UNSAVED_CELL][0]}
    # One is stopped from here: its Stop closes the connection, the partial answer is kept.
    stopping = found[UNSAVED_STOP]
    await stopping.locator(".ipyllm-body").filter(has_text="You asked").wait_for()
    await click_stop(stopping)
    await wait_disconnect(teaching, ids[UNSAVED_STOP][1])
    stopped_status = stopping.locator(".ipyllm-status.ipyllm-state-stopped")
    await stopped_status.wait_for()
    assert "partial answer kept" in await stopped_status.inner_text()
    assert_partial(await stopping.locator(".ipyllm-body").inner_text(), UNSAVED_STOPPED)
    # The other one streams on; test_answer_shown_again_ends_complete sees it end.
    assert await found[UNSAVED_CELL].locator(".ipyllm-state-streaming").count() == 1
    assert await notebook.report() == CLEAN
    assert await notebook.frame_problems() == NOTHING_WRONG


async def running_views(notebook: ChatNotebook, ids: dict[int, str]) -> dict[int, Locator]:
    """The live views %chat running showed again, by the cell of the answer: each is known by
    the hide rule its stylesheet carries (its answer id)."""
    views = notebook.output_area(RUNNING).locator(".ipyllm:not(.ipyllm-static)")
    found: dict[int, Locator] = {}

    async def shown() -> bool:
        for i in range(await views.count()):
            style = await views.nth(i).locator("style").first.text_content() or ""
            for index, answer_id in ids.items():
                if f'data-ipyllm-fallback="{answer_id}"' in style:
                    found[index] = views.nth(i)
        return len(found) == len(ids)

    try:
        await wait_until(shown, 10_000, "")
    except TimeoutError:
        state = await notebook.chat_state(RUNNING)
        raise AssertionError(
            f"%chat running did not show the running answers {ids}: found {list(found)} among"
            f" {await views.count()} views; the cell shows {state.text!r}"
        ) from None
    return found


# --- c. save mid-stream, close, reopen with the kernel alive ----------------------------------


async def test_reopen_with_the_kernel_alive_shows_the_answer_live_to_its_end(
    notebook: Survive, teaching: ServerThread
) -> None:
    await start_partial(notebook, REOPEN, teaching)
    await save_partial(notebook, REOPEN)
    await notebook.reopen()
    await notebook.widen()
    await notebook.wait_for_chat(REOPEN, LIVE_SHOWN)
    await notebook.wait_for_chat(REOPEN, LIVE_FINAL)
    state = await notebook.chat_state(REOPEN)
    assert_complete(state, REOPENED)
    assert state.shown_outputs == 1 and state.fallback_hidden, state
    assert "model not found" not in state.text
    assert await notebook.report() == CLEAN
    assert await notebook.frame_problems() == NOTHING_WRONG


# --- b, continued: the answer shown again by %chat running ends complete ----------------------


async def test_answer_shown_again_ends_complete(notebook: Survive) -> None:
    """The answer test_reload_unsaved_... left streaming, shown by %chat running (the page was
    reopened since, the kernel alive: its view came back with it) ends with its whole text."""
    ids = notebook.shared.get("running_ids")
    if ids is None:
        pytest.fail("the %chat running test did not leave an answer streaming")
    [view] = (await running_views(notebook, ids)).values()
    await view.locator(".ipyllm-status.ipyllm-state-done").wait_for(timeout=60_000)
    body = await view.locator(".ipyllm-body").inner_text()
    assert words_of(body) == expected_words(UNSAVED), body
    assert not await view.locator("button.ipyllm-stop").is_enabled()


# --- f. blocking mode: the swap to the static copy does not move the page ---------------------

# From now until __ipyllm_swap_stop(): the cell's output area, the cell's place on screen and
# the scroll offsets, at every DOM change in the output area and at every frame.
SWAP_RECORDER_JS = """
cell => {
  const area = cell.querySelector(".jp-OutputArea");
  let scroller = cell.parentElement;
  while (scroller && !(scroller.scrollHeight > scroller.clientHeight
                       && /auto|scroll/.test(getComputedStyle(scroller).overflowY))) {
    scroller = scroller.parentElement;
  }
  const records = [];
  const record = kind => {
    const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
    const copy = cell.querySelector(".ipyllm-static");
    const root = live ?? copy;
    records.push({
      kind,
      live: live?.checkVisibility() ?? false,
      static: copy?.checkVisibility() ?? false,
      final: /ipyllm-state-(done|stopped|error)/.test(
        root?.querySelector(".ipyllm-status")?.className ?? ""),
      body: root?.querySelector(".ipyllm-body")?.innerText.length ?? 0,
      height: area.getBoundingClientRect().height,
      top: cell.getBoundingClientRect().top,
      scrollTop: scroller ? scroller.scrollTop : null,
      scrollY: window.scrollY,
    });
  };
  const observer = new MutationObserver(() => record("dom"));
  observer.observe(area, {childList: true, subtree: true, characterData: true, attributes: true});
  let watching = true;
  const frame = () => { if (watching) { record("frame"); requestAnimationFrame(frame); } };
  requestAnimationFrame(frame);
  window.__ipyllm_swap_stop = () => { watching = false; observer.disconnect(); return records; };
  return scroller ? scroller.className : "(the document)";
}
"""


async def test_blocking_swap_to_the_static_copy_does_not_move_the_page(
    notebook: Survive,
) -> None:
    """Nothing else in the notebook changes meanwhile (every earlier answer has ended), so
    the scroll offset moves only if the swap moves the page (no scroll anchoring at work)."""
    live = f"{PANEL} .ipyllm:not(.ipyllm-static)"
    streaming = notebook.page.locator(f"{live} .ipyllm-state-streaming")

    async def all_ended() -> bool:
        return await streaming.count() == 0

    await wait_until(all_ended, 60_000, "an earlier answer was still streaming")
    running = asyncio.create_task(notebook.run_cell(WAIT))
    try:
        await notebook.wait_for_chat(
            WAIT, 'cell.querySelector(".ipyllm:not(.ipyllm-static) .ipyllm-body")?.innerText.trim()'
        )
        cell = await notebook.cell(WAIT).element_handle()
        await cell.evaluate("cell => cell.scrollIntoView({block: 'center'})")
        await notebook.page.mouse.move(0, 0)
        scroller = await cell.evaluate(SWAP_RECORDER_JS)
        # The page as it is (a cell's screenshot could scroll it).
        await notebook.screenshot("chat-swap-live")
    finally:
        await running
    state = await notebook.wait_static(WAIT)
    await notebook.page.wait_for_timeout(0)  # one more turn of the page's loop
    await notebook.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
    records: list[dict[str, Any]] = await notebook.page.evaluate("() => __ipyllm_swap_stop()")
    assert state.state == "done" and state.outputs == 1 and not state.fallback, state
    assert words_of(state.prose) == expected_words(WAITED), state.body
    await notebook.screenshot("chat-swap-static")

    lives = [r for r in records if r["live"]]
    statics = [i for i, r in enumerate(records) if r["static"]]
    assert lives and statics, records[-5:]
    finals = [r for r in lives if r["final"]]
    before = (finals or lives)[-1]
    after = records[-1]
    between = records[records.index(before) + 1 : statics[0]]
    assert after["static"] and not after["live"], after
    measured = {key: (before[key], after[key]) for key in ("height", "scrollTop", "scrollY", "top")}
    collapsed = [r["height"] for r in between if r["kind"] == "frame" and not r["static"]]
    summary = json.dumps(
        {"scroller": scroller, "live_final_seen": bool(finals), **measured, "between": collapsed}
    )
    print("swap:", summary)  # for the CI log
    assert (before["scrollTop"] or 0) > 0 or before["scrollY"] > 0, f"not scrolled: {summary}"
    assert abs(after["height"] - before["height"]) <= HEIGHT_TOLERANCE_PX, summary
    assert after["scrollTop"] == before["scrollTop"], summary
    assert after["scrollY"] == before["scrollY"], summary
    assert after["top"] == before["top"], summary


# --- d. save mid-stream, close, restart the kernel, reopen ------------------------------------

# The heights of what the page shows of one cell's answer: its live view's output child, or
# its static copy's, and the parts of that view (for the report when two differ).
HEIGHTS_JS = """
cell => {
  const root = [...cell.querySelectorAll(".ipyllm")].find(el => el.checkVisibility());
  const height = el => el ? Math.round(el.getBoundingClientRect().height * 10) / 10 : null;
  return {
    kind: root ? (root.classList.contains("ipyllm-static") ? "static" : "live") : null,
    child: height(root?.closest(".jp-OutputArea-child")),
    view: height(root),
    status: height(root?.querySelector(".ipyllm-status")),
    body: height(root?.querySelector(".ipyllm-body")),
    width: root ? Math.round(root.getBoundingClientRect().width) : null,
    shown_children: [...cell.querySelectorAll(".jp-OutputArea-child")]
      .filter(c => c.checkVisibility()).map(height),
  };
}
"""


async def heights(notebook: ChatNotebook, index: int) -> dict[str, Any]:
    cell = await notebook.cell(index).element_handle()
    return dict(await cell.evaluate(HEIGHTS_JS))


async def test_restart_then_reopen_shows_the_saved_partial_answer(
    notebook: Survive, teaching: ServerThread
) -> None:
    # A finished answer first, for the height comparison of the next test.
    await notebook.run_cell(FINISH)
    await notebook.wait_ended(FINISH)
    notebook.shared["finished_live"] = await heights(notebook, FINISH)
    await notebook.shoot("finished-live", FINISH)

    await start_partial(notebook, RESTART, teaching)
    saved = await save_partial(notebook, RESTART)
    await notebook.reopen(lambda: asyncio.to_thread(notebook.server.restart_kernel, notebook.name))
    await notebook.widen()
    await notebook.wait_for_chat(RESTART, 'cell.querySelector(".ipyllm-static")?.checkVisibility()')
    await notebook.wait_for_chat(FINISH, 'cell.querySelector(".ipyllm-static")?.checkVisibility()')
    notebook.shared["finished_fallback"] = await heights(notebook, FINISH)
    await notebook.shoot("restarted", RESTART)
    await notebook.shoot("finished-fallback", FINISH)
    state = await notebook.chat_state(RESTART)
    assert state.static and not state.live and state.fallback and not state.fallback_hidden, state
    # The fallback as saved: its words, the part of the answer that had arrived.
    saved_text = saved.cells[RESTART].outputs[1]["data"]["text/plain"]
    assert words_of(state.prose) == words_of(answer_in(saved_text)), state
    assert_partial(state.prose, RESTARTED)
    assert await notebook.report() == CLEAN
    # Only the fallback is shown, not the widget output whose model is gone: not in this
    # cell, not in any other answer's, not at any frame since the page loaded.
    assert "model not found" not in state.text and state.shown_outputs == 1, state
    text = await notebook.page.locator(".jp-NotebookPanel .jp-Notebook").inner_text()
    assert "model not found" not in text and "Error displaying widget" not in text
    assert await notebook.frame_problems() == NOTHING_WRONG


async def test_fallback_after_restart_is_as_tall_as_the_final_live_view(notebook: Survive) -> None:
    """The same finished answer, as its live view showed it and as its fallback shows it after
    a kernel restart (test_restart_...'s page): the output is as tall, within a few pixels."""
    live = notebook.shared.get("finished_live")
    fallback = notebook.shared.get("finished_fallback")
    if live is None or fallback is None:
        pytest.fail("the restart test did not measure both views")
    assert (live["kind"], fallback["kind"]) == ("live", "static"), (live, fallback)
    summary = json.dumps({"live": live, "fallback": fallback})
    print("heights:", summary)  # for the CI log
    assert abs(live["child"] - fallback["child"]) <= HEIGHT_TOLERANCE_PX, summary
