"""The teaching server answers a page of another origin in Chromium, as JupyterLite needs.

A JupyterLite notebook runs in the page of its own site and reaches a server with fetch:
a cross-origin request with a JSON body and an Authorization header, so Chromium first
sends a preflight. Here a page of one teaching server calls another, streams the answer
through a body reader, and reads an error's body too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ipyllm.server import ServerThread, demo_answer

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FETCH_JS = """
async ([url, prompt]) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {"content-type": "application/json", "authorization": "Bearer not-a-key"},
    body: JSON.stringify({model: "demo", stream: true,
                          messages: [{role: "user", content: prompt}]}),
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let body = "", reads = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    reads += 1;
    body += decoder.decode(value, {stream: true});
  }
  return {status: response.status, body, reads};
}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerThread, ServerThread]]:
    with ServerThread() as page_origin, ServerThread(token_rate=200) as model:
        yield page_origin, model


async def test_a_page_of_another_origin_streams_an_answer_and_reads_an_error(
    browser: Browser, servers: tuple[ServerThread, ServerThread]
) -> None:
    page_origin, model = servers
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(page_origin.url + "/")  # the help text: a page of that origin
        answer = await page.evaluate(FETCH_JS, [f"{model.url}/v1/chat/completions", "CORS"])
        failed = await page.evaluate(
            FETCH_JS, [f"{model.url}/with/status=401/v1/chat/completions", "CORS"]
        )
    finally:
        await context.close()
    assert answer["status"] == 200 and answer["reads"] > 1, answer  # streamed, not whole
    deltas = [line for line in answer["body"].splitlines() if line.startswith('data: {"id"')]
    assert deltas and answer["body"].rstrip().endswith("data: [DONE]")
    expected = demo_answer([{"role": "user", "content": "CORS"}])
    assert expected.split()[0] in answer["body"]
    assert failed["status"] == 401 and "error" in failed["body"], failed
    methods = [r["method"] for r in model.app.log if r["event"] == "request"]
    assert methods == ["POST", "POST"]  # the preflights were answered, not logged
