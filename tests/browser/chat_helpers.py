"""Helpers for the %%chat browser tests: what a ChatView looks like in the page, the outputs
as the frontend holds them, a DOM check for hostile output, replayable SSE captures of the
hostile corpus, and screenshots for the docs."""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipyllm.render import STYLESHEET
from tests.browser.harness import (
    OUTPUT,
    PANEL,
    REPO_ROOT,
    SCREENSHOT_DIR,
    JupyterServer,
    NotebookPage,
)
from tests.safety import PAYLOADS

DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"

# The state of the one ChatView (live widget or static copy) in a cell. The live view is
# the widget box with class "ipyllm"; its static copy is <div class="ipyllm ipyllm-static">.
CHAT_STATE_JS = """
cell => {
  const root = cell.querySelector(".ipyllm");
  const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
  const stop = live
    ? [...live.querySelectorAll("button")].find(b => b.textContent.trim() === "Stop")
    : null;
  const body = root?.querySelector(".ipyllm-body");
  return {
    outputs: cell.querySelectorAll(".jp-OutputArea-output").length,
    live: live !== null,
    static: cell.querySelector(".ipyllm-static") !== null,
    status: root?.querySelector(".ipyllm-status")?.innerText.trim() ?? "",
    spinner: cell.querySelector(".ipyllm-spinner") !== null,
    body: body ? body.innerText.replace(/\\s+/g, " ").trim() : "",
    stop_enabled: stop ? !stop.disabled : false,
  };
}
"""

# The cell shows the static copy of its answer, and no live view any more.
STATIC_ONLY = (
    'cell.querySelector(".ipyllm-static") && !cell.querySelector(".ipyllm:not(.ipyllm-static)")'
)

# The outputs of a cell as the frontend's notebook model holds them (what it saves).
OUTPUT_MODEL_JS = """
([path, index]) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets("main")).find(w => w.context?.path === path);
  const outputs = panel.content.widgets[index].model.outputs;
  const found = [];
  for (let i = 0; i < outputs.length; i++) {
    const output = outputs.get(i);
    found.push({type: output.type, data: output.data, metadata: output.metadata});
  }
  return found;
}
"""

# Everything in the outputs under `selector` that could run script, load something or cover
# the page: forbidden elements (MathJax's own output inside mjx-container excepted, and the
# live widget's own buttons), event-handler attributes, URLs with other schemes than
# http(s)/mailto (or a #fragment), style attributes with url() or fixed positions, <style>
# elements other than ipyllm's own stylesheet, and JupyterLab's classes in the answer.
DOM_VIOLATIONS_JS = """
([selector, stylesheet]) => {
  const forbidden = new Set(["script", "iframe", "object", "embed", "svg", "math", "form",
    "base", "meta", "link", "frame", "frameset", "applet", "img", "image", "input",
    "textarea", "select", "video", "audio", "source", "portal", "template", "noscript"]);
  const urlAttributes = new Set(["href", "src", "action", "formaction", "xlink:href",
    "data", "poster", "background", "srcset", "srcdoc", "ping", "codebase", "cite"]);
  const noise = /[\\x00-\\x20\\x7f-\\x9f\\u200b-\\u200d\\ufeff]/g;
  const found = [];
  const describe = el => `<${el.tagName.toLowerCase()} class="${el.getAttribute("class")}">`;
  for (const output of document.querySelectorAll(selector)) {
    for (const el of output.querySelectorAll("*")) {
      const tag = el.tagName.toLowerCase();
      const inMath = el.closest("mjx-container") !== null;
      if (forbidden.has(tag) && !inMath) found.push(`element ${describe(el)}`);
      if (tag === "style" && el.textContent !== stylesheet) {
        found.push(`foreign <style>: ${el.textContent.slice(0, 80)}`);
      }
      if (tag === "button" && !el.classList.contains("jupyter-button")) {
        found.push(`button ${describe(el)}`);
      }
      if (el.closest(".ipyllm-body") && [...el.classList].some(c => c.startsWith("jp-"))) {
        found.push(`JupyterLab class in the answer: ${describe(el)}`);
      }
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        const value = attr.value.replace(noise, "").toLowerCase();
        if (name.startsWith("on")) found.push(`${name}= on ${describe(el)}`);
        if (urlAttributes.has(name) && !/^(https?:|mailto:|#)/.test(value)) {
          found.push(`${name}="${attr.value}" on ${describe(el)}`);
        }
        if (name === "style" && /url\\(|expression|position:\\s*fixed|@import/.test(value)) {
          found.push(`style="${attr.value}" on ${describe(el)}`);
        }
      }
    }
  }
  return found;
}
"""


@dataclass(frozen=True)
class ChatState:
    outputs: int
    live: bool
    static: bool
    status: str
    spinner: bool
    body: str
    stop_enabled: bool


class ChatNotebook(NotebookPage):
    """A NotebookPage that knows what a ChatView looks like."""

    async def chat_state(self, index: int) -> ChatState:
        handle = await self.cell(index).element_handle()
        return ChatState(**await handle.evaluate(CHAT_STATE_JS))

    async def output_model(self, index: int) -> list[dict[str, Any]]:
        return await self.page.evaluate(OUTPUT_MODEL_JS, [self.name, index])

    async def trusted(self) -> bool:
        """Whether the frontend trusts every code cell (their outputs render unsanitized)."""
        return await self.page.evaluate(
            """path => {
              const panel = Array.from(window.jupyterapp.shell.widgets("main"))
                .find(w => w.context?.path === path);
              return panel.content.widgets
                .filter(cell => cell.model.type === "code")
                .every(cell => cell.model.trusted);
            }""",
            self.name,
        )

    async def dom_violations(self, selector: str | None = None) -> list[str]:
        return await dom_violations(self.page, selector or f"{PANEL} {OUTPUT}")

    async def wait_for_chat(
        self, index: int, condition: str, timeout_ms: float = 30_000, raf: bool = False
    ) -> None:
        """Wait until the JS expression ``condition`` (over ``cell``, the cell's element) holds.
        With ``raf`` it is checked at every animation frame, for states that last briefly."""
        handle = await self.cell(index).element_handle()
        await self.page.wait_for_function(
            f"cell => Boolean({condition})",
            arg=handle,
            timeout=timeout_ms,
            polling="raf" if raf else 20,
        )

    async def wait_static(self, index: int, timeout_ms: float = 30_000) -> ChatState:
        await self.wait_for_chat(index, STATIC_ONLY, timeout_ms)
        return await self.chat_state(index)

    async def widen(self) -> None:
        """Collapse JupyterLab's side panels, so the notebook has the viewport's width."""
        await self.page.evaluate(
            "() => { const s = window.jupyterapp.shell; s.collapseLeft?.(); s.collapseRight?.(); }"
        )

    async def shoot(self, name: str, index: int, docs_name: str | None = None) -> Path:
        """A PNG of one cell (input and output) in artifacts/screenshots/; with
        IPYLLM_UPDATE_DOCS=1 and a ``docs_name``, JupyterLab's is copied to docs/screenshots/."""
        # No hover effects (JupyterLab's output-collapse overlay) in the picture.
        await self.page.mouse.move(0, 0)
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOT_DIR / f"{self.frontend}-chat-{name}.png"
        await self.cell(index).screenshot(path=target, animations="disabled")
        if docs_name and self.frontend == "lab" and os.environ.get("IPYLLM_UPDATE_DOCS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, DOCS_SCREENSHOTS / docs_name)
        return target


def shutdown_session(server: JupyterServer, notebook_name: str) -> None:
    """Shut down the kernel session of one notebook, leaving the others running."""
    sessions = server.api("GET", "/api/sessions")
    assert isinstance(sessions, list)
    for session in sessions:
        if session.get("path") == notebook_name:
            server.api("DELETE", f"/api/sessions/{session['id']}")


async def dom_violations(page: Any, selector: str) -> list[str]:
    return await page.evaluate(DOM_VIOLATIONS_JS, [selector, STYLESHEET])


# --- the hostile corpus as OpenAI chat streams ------------------------------------------------

_EVENT_BYTES = 400  # every event padded to this size, so split=_EVENT_BYTES is one per piece


def _event(payload: dict[str, Any]) -> bytes:
    data = f"data: {json.dumps(payload, separators=(',', ':'))}"
    room = _EVENT_BYTES - len(data) - len(',"pad":""}\n\n') + 1
    assert room >= 0, f"event too long for {_EVENT_BYTES} bytes: {data}"
    padded = data[:-1] + f',"pad":"{"x" * room}"}}\n\n'
    encoded = padded.encode("ascii")
    assert len(encoded) == _EVENT_BYTES, len(encoded)
    return encoded


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _event(
        {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": "hostile-replay",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


def hostile_sse(text: str, seed: int) -> bytes:
    """An OpenAI chat stream of ``text`` in pieces of 3 to 8 characters, one event each."""
    pieces, start, sizes = [], 0, random.Random(seed)
    while start < len(text):
        step = sizes.randint(3, 8)
        pieces.append(text[start : start + step])
        start += step
    events = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": piece}) for piece in pieces]
    events.append(_chunk({}, finish="stop"))
    return b"".join(events) + b"data: [DONE]\n\n"


def write_hostile_fixtures(directory: Path) -> dict[str, str]:
    """One .sse file per payload of tests/corpus/hostile; returns {file name: payload}."""
    written = {}
    for seed, (name, payload) in enumerate(PAYLOADS.items()):
        file_name = name.removesuffix(".md") + ".sse"
        (directory / file_name).write_bytes(hostile_sse(payload, seed))
        written[file_name] = payload
    return written


def replay_url(server_url: str, file_name: str, delay: float) -> str:
    """A base URL that replays ``file_name`` one event at a time, ``delay`` s apart."""
    return f"{server_url}/with/replay={file_name},split={_EVENT_BYTES},delay={delay}/v1"
