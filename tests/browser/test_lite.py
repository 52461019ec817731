"""ipyllm in JupyterLite, in a real browser, offline: the site ``python -m ipyllm.lite build``
makes, served on 127.0.0.1, opened in JupyterLab-in-the-browser with the Pyodide kernel.

The site is built once per machine into the lite cache (``~/.cache/ipyllm-lite/site-test``,
or ``IPYLLM_LITE_CACHE``) and rebuilt only when its inputs change (ipyllm's wheel hash, the
notebooks, the tools' versions): the first build downloads Pyodide's core from npm and wheels
from PyPI, later ones take seconds. One notebook, one kernel, the tests in file order:

- ``%%chat`` with the in-process demo model (``DemoTransport`` under Pyodide) returns at once
  and the answer grows in place; Stop stops it;
- ``%%chat`` against the teaching server goes through the browser's ``fetch``, across
  origins as in a classroom (the site on one port, ``python -m ipyllm.server`` on another;
  the site tells the notebook where), and streams; Stop aborts the fetch and the teaching
  server sees the client leave; ``%chat models`` lists its models (no thread to wait in:
  the list replaces a placeholder);
- ``--events`` shows the raw wire events;
- the whole hostile corpus, streamed in pieces, stays inert;
- and no request of the page or its workers ever left 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from tests.browser.chat_helpers import CHAT_STATE_JS, DOCS_SCREENSHOTS, hostile_sse
from tests.browser.harness import (
    FOREIGN_URL,
    SCREENSHOT_DIR,
    install_sentinel,
    page_report,
    wait_until,
)
from tests.safety import PAYLOADS

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

    from ipyllm.server import ServerThread

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="session"),
    # The first build downloads Pyodide and wheels; the kernel's cold start takes 20-60 s.
    pytest.mark.timeout(900),
]

NOTEBOOK = "lite-test.ipynb"
TEACHING_SERVER_PATH = "/teaching-server"
HOSTILE = "hostile.sse"
DEMO = "http://demo.ipyllm.invalid/with/{}/v1"
# Cell 0 is the site's own install cell (%pip install ipyllm, from the site).
SETUP, DEMO_CELL, DEMO_STOP, FETCH_CELL, EVENTS_CELL, HOSTILE_CELL, MODELS_CELL = range(1, 8)
CELLS = {
    # The teaching server's address, from the site (a test's port changes every run).
    SETUP: "%load_ext ipyllm\nimport js\n"
    f"teach = await (await js.fetch('{TEACHING_SERVER_PATH}')).text()\nteach",
    DEMO_CELL: f"%%chat --no-history -p demo --base-url {DEMO.format('rate=25,words=150')}\n"
    "What does it mean to stream an answer?",
    DEMO_STOP: f"%%chat --no-history -p demo --base-url {DEMO.format('rate=15,words=500')}\n"
    "Tell me a long story.",
    FETCH_CELL: "%%chat --no-history --base-url {teach}/with/rate=20,words=500/v1\n"
    "Tell me a long story over fetch.",
    EVENTS_CELL: "%%chat --events --no-history --base-url {teach}/with/rate=60,words=30/v1\n"
    "Explain server-sent events.",
    HOSTILE_CELL: "%%chat --no-history --base-url "
    f"{{teach}}/with/replay={HOSTILE},split=event,delay=0.002/v1\nShow the payloads.",
    MODELS_CELL: "%chat models -p openai --base-url {teach}/v1",
}
FIRST_RUN_TIMEOUT_MS = 240_000  # kernel start and %pip install, cold, on 2 busy cores
RUN_TIMEOUT_MS = 60_000
ANSWER_TIMEOUT_MS = 90_000
CELL = ".jp-Notebook .jp-Cell"
PROMPT = ".jp-InputArea-prompt"
FINISHED = re.compile(r"^\[\d+\]:$")
LOOPBACK = re.compile(r"^(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:[/?#]|$)")
# Elements and attributes that would run script, load something or leave the page (styles
# are set by ipywidgets and MathJax themselves; the sanitizer's own tests cover them).
ACTIVE_CONTENT_JS = """
root => {
  const bad = [];
  const forbidden = new Set(["SCRIPT", "IFRAME", "OBJECT", "EMBED", "IMG", "FORM", "INPUT",
                             "BASE", "META", "LINK", "STYLE", "SVG", "FRAME", "AUDIO", "VIDEO"]);
  for (const el of root.querySelectorAll(".ipyllm-body *")) {
    if (el.closest("mjx-container")) continue;  // MathJax's own rendering of the math
    if (forbidden.has(el.tagName.toUpperCase())) bad.push(el.tagName);
    for (const attr of el.attributes) {
      if (attr.name.startsWith("on") || attr.name === "srcdoc")
        bad.push(`${el.tagName}[${attr.name}]`);
      if ((attr.name === "href" || attr.name === "src") && !/^(https?|mailto):/i.test(
          attr.value.replace(/[\\x00-\\x20]/g, "")))
        bad.push(`${el.tagName}[${attr.name}=${attr.value}]`);
    }
  }
  return bad;
}
"""


def lite_unavailable_reason() -> str | None:
    for module in ("jupyterlite_core", "jupyterlite_pyodide_kernel", "packaging"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[lite]')"
    if shutil.which("npm") is None:
        return "npm is missing (Pyodide's core comes from the npm registry)"
    return None


def write_test_notebook(path: Path) -> Path:
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"cell-{index}", "metadata": {},
         "outputs": [], "source": source}
        for index, source in sorted(CELLS.items())
    ]  # fmt: skip
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(notebook, indent=1) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def wheel_under_test(cache: Path) -> Path:
    """This checkout's wheel, or IPYLLM_LITE_WHEEL's (to test a given one), under its hash."""
    from ipyllm.lite import ipyllm_wheel

    given = os.environ.get("IPYLLM_LITE_WHEEL")
    if not given:
        return ipyllm_wheel(cache / "ipyllm-wheel", lambda line: None)
    path = Path(given)
    kept = cache / "ipyllm-wheel" / hashlib.sha256(path.read_bytes()).hexdigest() / path.name
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept)
    return kept


def forget_old_sites(cache: Path, keep: Path) -> None:
    """Test sites of other wheels not used for a day go (each is about 40 MB)."""
    for old in cache.glob("site-test-*"):
        if old != keep and old.is_dir() and time.time() - old.stat().st_mtime > 86_400:
            shutil.rmtree(old, ignore_errors=True)


@pytest.fixture(scope="module")
def lite_site() -> Path:
    """The site, built (or found up to date) in the lite cache."""
    reason = lite_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the JupyterLite test cannot run: {reason}")
        pytest.skip(f"the JupyterLite test cannot run: {reason}")
    from ipyllm.lite import build, default_cache

    cache = default_cache()
    notebook = write_test_notebook(cache / "test-contents" / NOTEBOOK)
    started = time.monotonic()
    lines: list[str] = []
    wheel = wheel_under_test(cache)
    # One site per wheel: test runs at once (two checkouts on one machine) never share one.
    site = cache / f"site-test-{wheel.parent.name[:12]}"
    forget_old_sites(cache, keep=site)
    site = build(site, cache=cache, contents=[notebook], wheel=wheel, log=lines.append)
    print(f"lite site ready in {time.monotonic() - started:.0f} s: {lines[-1]}")
    return site


@pytest.fixture(scope="module")
def teaching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    from ipyllm.server import ServerThread

    fixtures = tmp_path_factory.mktemp("lite-fixtures")
    (fixtures / HOSTILE).write_bytes(hostile_sse("\n\n".join(PAYLOADS.values()), 7))
    with ServerThread(fixtures_dir=fixtures) as server:
        yield server


def site_handler(teaching_url: str) -> type[Any]:
    """The site's handler, which also tells the notebook where the teaching server is."""
    from ipyllm.lite import SiteHandler

    class Handler(SiteHandler):
        def do_GET(self) -> None:
            if self.path != TEACHING_SERVER_PATH:
                super().do_GET()
                return
            address = teaching_url.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(address)))
            self.end_headers()
            self.wfile.write(address)

    return Handler


class LiteNotebook:
    """The test notebook open in JupyterLite's JupyterLab."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.requests: list[str] = []

    def cell(self, index: int) -> Locator:
        return self.page.locator(CELL).nth(index)

    async def run_cell(self, index: int, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Run one cell (Ctrl+Enter) and wait until its prompt shows an execution count."""
        prompt = self.cell(index).locator(PROMPT)
        await prompt.scroll_into_view_if_needed()
        before = (await prompt.inner_text()).strip()
        await prompt.click()
        await self.page.keyboard.press("Control+Enter")

        async def finished() -> bool:
            text = (await prompt.inner_text()).strip()
            return text != before and bool(FINISHED.match(text))

        await wait_until(finished, timeout_ms, f"cell {index} did not finish")

    async def state(self, index: int) -> dict[str, Any]:
        state: dict[str, Any] = await self.cell(index).evaluate(CHAT_STATE_JS)
        return state

    async def wait_state(self, index: int, states: tuple[str, ...], timeout_ms: float) -> dict:
        async def reached() -> bool:
            return (await self.state(index))["state"] in states

        await wait_until(reached, timeout_ms, f"cell {index} never reached {states}")
        return await self.state(index)

    async def shoot(self, index: int, name: str) -> Path:
        """The page with cell ``index`` at the top, in artifacts/screenshots/; with
        IPYLLM_UPDATE_DOCS=1 also in docs/screenshots/."""
        await self.page.mouse.move(0, 0)
        await self.cell(index).evaluate("cell => cell.scrollIntoView({block: 'start'})")
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOT_DIR / name
        await self.page.screenshot(path=target, animations="disabled")
        if os.environ.get("IPYLLM_UPDATE_DOCS") == "1" and name == "jupyterlite.png":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, DOCS_SCREENSHOTS / name)
        return target

    async def click_stop(self, index: int) -> None:
        label = re.compile(r"^\s*Stop\s*$")
        await self.cell(index).locator("button").filter(has_text=label).first.click()

    async def growth(self, index: int, samples: int, timeout_s: float = 60) -> list[str]:
        """Distinct texts of the answer while it streams, until ``samples`` were seen."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(seen) < samples and time.monotonic() < deadline:
            state = await self.state(index)
            if state["state"] == "streaming" and state["body"] and state["body"] not in seen:
                seen.append(state["body"])
            elif state["state"] in ("done", "stopped", "error"):
                break
            await asyncio.sleep(0.05)
        return seen


async def close_site_page(page: Page, server: Any, screenshot: str) -> None:
    """The page as it was last, in artifacts/screenshots/; then its browser context and the
    site's server closed."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOT_DIR / screenshot)
    await page.context.close()
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lite(
    browser: Browser, lite_site: Path, teaching: ServerThread
) -> AsyncIterator[LiteNotebook]:
    from ipyllm.lite import serve_in_thread

    server = serve_in_thread(lite_site, handler_class=site_handler(teaching.url))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    # Every request of the page, its workers (the kernel runs in one) and service worker.
    context.on("request", lambda request: requests.append(request.url))

    async def block(route: Any) -> None:
        requests.append(route.request.url)
        await route.abort("blockedbyclient")

    await context.route(FOREIGN_URL, block)
    page = await context.new_page()
    await install_sentinel(page)
    notebook = LiteNotebook(page, server.url)
    notebook.requests = requests
    try:
        await page.goto(f"{server.url}/lab/index.html?path={NOTEBOOK}")
        await page.locator(CELL).nth(MODELS_CELL).wait_for(timeout=RUN_TIMEOUT_MS)
        yield notebook
    finally:
        await close_site_page(page, server, "jupyterlite-last.png")


async def test_chat_streams_in_place_from_the_demo_model(
    lite: LiteNotebook, teaching: ServerThread
) -> None:
    await lite.run_cell(0, FIRST_RUN_TIMEOUT_MS)  # the site's cell: %pip install ipyllm
    await lite.run_cell(SETUP)
    assert teaching.url in await lite.cell(SETUP).locator(".jp-OutputArea").inner_text()
    started = time.monotonic()
    await lite.run_cell(DEMO_CELL)
    returned = time.monotonic() - started
    state = await lite.state(DEMO_CELL)
    # Returned at once: the cell finished while the answer still streams in the background.
    assert state["state"] in ("pending", "streaming"), (returned, state)
    texts = await lite.growth(DEMO_CELL, 2)

    async def well_under_way() -> bool:
        state = await lite.state(DEMO_CELL)
        return state["state"] != "streaming" or len(state["body"]) > 300

    await wait_until(well_under_way, ANSWER_TIMEOUT_MS, "the answer did not grow")
    await lite.shoot(DEMO_CELL, "jupyterlite.png")  # mid-answer, for the README
    texts += [text for text in await lite.growth(DEMO_CELL, 3) if text not in texts]
    assert len(texts) >= 4, texts
    assert all(len(a) < len(b) for a, b in itertools.pairwise(texts)), texts
    final = await lite.wait_state(DEMO_CELL, ("done", "stopped", "error"), ANSWER_TIMEOUT_MS)
    assert final["state"] == "done", final
    assert final["body"].startswith(texts[0][:20]), (final, texts)


async def test_stop_stops_the_demo_answer(lite: LiteNotebook) -> None:
    await lite.run_cell(DEMO_STOP)
    await lite.growth(DEMO_STOP, 2)
    await lite.click_stop(DEMO_STOP)
    stopped = await lite.wait_state(DEMO_STOP, ("stopped",), RUN_TIMEOUT_MS)
    await asyncio.sleep(1.0)
    later = await lite.state(DEMO_STOP)
    assert later["state"] == "stopped" and later["body"] == stopped["body"], (stopped, later)
    assert not later["stop_enabled"]


async def test_fetch_streams_and_stop_closes_the_connection(
    lite: LiteNotebook, teaching: ServerThread
) -> None:
    await lite.run_cell(FETCH_CELL)
    texts = await lite.growth(FETCH_CELL, 4)
    assert len(texts) >= 4, (texts, await lite.state(FETCH_CELL))
    await lite.shoot(FETCH_CELL, "jupyterlite-fetch.png")
    await lite.click_stop(FETCH_CELL)
    stopped = await lite.wait_state(FETCH_CELL, ("stopped",), RUN_TIMEOUT_MS)
    assert len(stopped["body"]) >= len(texts[-1]), (stopped, texts)
    # The browser aborted the fetch: the server saw the connection close.
    record = await asyncio.to_thread(
        teaching.app.wait_for, lambda r: r.get("event") == "disconnect", 10.0
    )
    assert record is not None, teaching.app.log[-5:]


async def test_events_panel_shows_raw_events(lite: LiteNotebook) -> None:
    await lite.run_cell(EVENTS_CELL)
    final = await lite.wait_state(EVENTS_CELL, ("done", "stopped", "error"), ANSWER_TIMEOUT_MS)
    assert final["state"] == "done", final
    # The panel shown: the live view's, or the static copy's once the answer has ended.
    texts = await lite.cell(EVENTS_CELL).evaluate(
        "cell => [...cell.querySelectorAll('.ipyllm-raw-event')]"
        ".filter(e => e.checkVisibility()).map(e => e.innerText)"
    )
    assert len(texts) >= 10, texts
    assert sum('"object":"chat.completion.chunk"' in text for text in texts) >= 9, texts[:3]
    assert all(re.match(r"^\s*\d+\.\d ms ", text) for text in texts), texts[:3]


async def test_hostile_payloads_stay_inert(lite: LiteNotebook) -> None:
    await lite.run_cell(HOSTILE_CELL)
    final = await lite.wait_state(HOSTILE_CELL, ("done", "stopped", "error"), ANSWER_TIMEOUT_MS)
    assert final["state"] == "done", final
    assert "onerror" in final["body"]  # the payloads' text is shown, as text
    bad = await lite.cell(HOSTILE_CELL).evaluate(ACTIVE_CONTENT_JS)
    assert bad == [], bad
    await asyncio.sleep(1.0)  # anything that would fire (onerror, a timer) has had its chance
    report = await page_report(lite.page)
    assert report["xss"] == 0 and report["dialogs"] == [], report


async def test_chat_models_lists_the_teaching_servers_models(lite: LiteNotebook) -> None:
    await lite.run_cell(MODELS_CELL)
    output = lite.cell(MODELS_CELL).locator(".jp-OutputArea")

    async def listed() -> bool:
        return "models from openai at" in await output.inner_text()

    await wait_until(listed, RUN_TIMEOUT_MS, "the model list never replaced its placeholder")
    lines = (await output.inner_text()).splitlines()
    assert "demo" in [line.strip() for line in lines], lines
    assert not any("asking" in line for line in lines), lines


async def test_no_request_left_loopback(lite: LiteNotebook) -> None:
    assert lite.requests, "no request was seen at all"
    foreign = [url for url in lite.requests if not LOOPBACK.match(url) and not _local(url)]
    assert foreign == [], foreign
    report = await page_report(lite.page)
    assert report["foreign_requests"] == [], report


def _local(url: str) -> bool:
    return url.startswith(("data:", "blob:", "about:"))


REPLAY_PROMPT = "Tell me a recorded answer, please."


@pytest.fixture(scope="module")
def replay_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A site built with recordings of an answer from a teaching server that is gone since:
    only a replay can answer it in the browser."""
    import asyncio as asyncio_

    import ipyllm
    from ipyllm.lite import build, default_cache
    from ipyllm.server import ServerThread

    if lite_unavailable_reason() is not None:
        pytest.skip(str(lite_unavailable_reason()))
    work = tmp_path_factory.mktemp("lite-replay")
    store = work / "store.sqlite3"
    with ServerThread() as gone:
        base_url = f"{gone.url}/v1"
        recorded = asyncio_.run(
            ipyllm.achat(REPLAY_PROMPT, base_url=base_url, record=True, store=store)
        )
    assert recorded.status == "done"
    notebook = work / "lite-replay.ipynb"
    cell = f"%load_ext ipyllm\n%chat --no-history --base-url {base_url} {REPLAY_PROMPT}"
    notebook.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "execution_count": None,
                        "id": "replayed",
                        "metadata": {},
                        "outputs": [],
                        "source": cell,
                    }
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        ),
        encoding="utf-8",
    )
    cache = default_cache()
    site = build(
        work / "site",
        cache=cache,
        contents=[notebook],
        replay=store,
        wheel=wheel_under_test(cache),
        log=lambda line: None,
    )
    return site, recorded.text


async def test_a_site_built_with_recordings_answers_from_them(
    browser: Browser, replay_site: tuple[Path, str]
) -> None:
    from ipyllm.lite import serve_in_thread

    site, recorded_text = replay_site
    server = serve_in_thread(site)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.route(FOREIGN_URL, lambda route: route.abort("blockedbyclient"))
    try:
        page = await context.new_page()
        notebook = LiteNotebook(page, server.url)
        await page.goto(f"{server.url}/lab/index.html?path=lite-replay.ipynb")
        await page.locator(CELL).nth(1).wait_for(timeout=RUN_TIMEOUT_MS)
        await notebook.run_cell(0, FIRST_RUN_TIMEOUT_MS)  # installs, copies the recordings
        await notebook.run_cell(1)
        final = await notebook.wait_state(1, ("done", "stopped", "error"), ANSWER_TIMEOUT_MS)
        assert final["state"] == "done", final
        # The server it was recorded from is gone: only the recording can have answered.
        words = recorded_text.split()
        assert " ".join(words[-8:]) in final["body"], (final, recorded_text)
    finally:
        await close_site_page(page, server, "jupyterlite-replay.png")


async def test_the_site_serves_everything_itself(lite_site: Path) -> None:
    """The site holds ipyllm's wheel and its pure-Python dependencies, no nh3 or orjson."""
    wheels = sorted(path.name for path in (lite_site / "pypi").glob("*.whl"))
    assert any(name.startswith("ipyllm-") for name in wheels), wheels
    assert not any(name.startswith(("nh3-", "orjson-", "genai_prices-")) for name in wheels)
    config = json.loads((lite_site / "jupyter-lite.json").read_text(encoding="utf-8"))
    settings = config["jupyter-config-data"]["litePluginSettings"]
    kernel = settings["@jupyterlite/pyodide-kernel-extension:kernel"]
    assert kernel["disablePyPIFallback"] is True
    assert kernel["pyodideUrl"].startswith("./")
