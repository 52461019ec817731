"""The report example served by Voilà streams its commentary in place, in Chromium."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.harness import REPO_ROOT, install_sentinel, wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

REPORT = REPO_ROOT / "notebooks" / "report-example.ipynb"
# The first view's body (the widget; its hidden fallback has no rendered text).
BODY_LENGTH_JS = """() => {
  const bodies = [...document.querySelectorAll('.ipyllm:not(.ipyllm-static) .ipyllm-body')];
  return bodies.length ? bodies[0].innerText.length : -1;
}"""
STATUS_JS = """() => {
  const status = document.querySelector('.ipyllm:not(.ipyllm-static) .ipyllm-status');
  return status ? status.innerText : '';
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def voila_url() -> Iterator[str]:
    pytest.importorskip("voila")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "voila", str(REPORT), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_the_report_streams_in_place_under_voila(browser: Browser, voila_url: str) -> None:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    sentinel = await install_sentinel(page)
    try:
        await page.goto(voila_url, timeout=120_000)
        lengths: list[int] = []

        async def grew_three_times() -> bool:
            length = int(await page.evaluate(BODY_LENGTH_JS))
            if length > 0 and (not lengths or length > lengths[-1]):
                lengths.append(length)
            return len(lengths) >= 3

        # The commentary grows in place: seen at three increasing lengths while streaming.
        await wait_until(grew_three_times, 60_000, "the commentary never grew in place")
        assert "streaming" in await page.evaluate(STATUS_JS)

        async def done() -> bool:
            return "done" in await page.evaluate(STATUS_JS)

        await wait_until(done, 60_000, "the commentary never ended")
        final = int(await page.evaluate(BODY_LENGTH_JS))
        assert final >= lengths[-1] > lengths[0] > 0
        await asyncio.sleep(0.5)
        # Voilà's own template links Font Awesome from a CDN (blocked here); nothing else
        # on the page asks to leave this machine.
        ours = [url for url in sentinel.foreign_requests if "fontawesome" not in url]
        assert ours == [] and sentinel.dialogs == []
    finally:
        await context.close()
