"""Helpers for the %%chat browser tests: what a ChatView looks like in the page (a live widget
with its static fallback beside it, exactly one of them shown), the outputs as the frontend
holds them, a DOM check for hostile output, a watcher of every frame, replayable SSE captures
of the hostile corpus, and screenshots for the docs."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ipyllm import Transcript
from ipyllm.render import PARTIAL_COPY_NOTE, STYLESHEET, render_markdown, static_bundle
from ipyllm.server import ServerThread, demo_answer
from ipyllm.views import hide_dead_live_css, hide_fallback_css
from tests.browser.harness import (
    CELL,
    OPEN_TIMEOUT_MS,
    OUTPUT,
    PANEL,
    REPO_ROOT,
    SCREENSHOT_DIR,
    Frontend,
    JupyterServer,
    NotebookPage,
    install_sentinel,
    wait_until,
    write_notebook,
)
from tests.safety import PAYLOADS
from tests.test_static_math import MATHML_ATTRIBUTES, MATHML_ELEMENTS

DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"

# ipyllm's own style rules beside the stylesheet, as ipyllm.views generates them, "{id}"
# standing for the answer's id. The live view's stylesheet ends with HIDE_FALLBACK: its own
# answer's fallback is not shown. The fallback starts with HIDE_DEAD_LIVE: the live output
# just before it is not shown when it holds no rendered view ("Loading widget...",
# "Error displaying widget: model not found").
HIDE_FALLBACK = hide_fallback_css("{id}")
HIDE_DEAD_LIVE = hide_dead_live_css("{id}")


def _static_math_css() -> str:
    """The static copy's second stylesheet, present when it holds math (MathML beside TeX),
    taken from the public static_bundle as tests/test_static_math.py does."""
    transcript = Transcript(provider="demo", model="demo")
    transcript.start()
    transcript.end("done")
    data, _ = static_bundle(transcript, render_markdown("$x$"), "")
    styles = data["text/html"].partition('<div class="ipyllm ipyllm-static">')[0]
    css = styles.removeprefix("<style></style><style>").removesuffix("</style>")
    assert css and "<" not in css, styles
    return css


STATIC_MATH_CSS = _static_math_css()
FINAL_STATES = ("done", "stopped", "error")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# What the page sentinel must report: no script ran, no dialog, nothing fetched elsewhere.
CLEAN = {"xss": 0, "dialogs": [], "foreign_requests": []}
# What the frame watcher must never see: an answer shown twice or not at all, a dead widget.
NOTHING_WRONG = {"notOne": [], "notOneCount": 0, "notFound": []}

# The state of the ChatView of a cell: its live widget (the widget box with class "ipyllm")
# and its static fallback (<div data-ipyllm-fallback=ID> holding <div class="ipyllm
# ipyllm-static">), which of them is shown (computed visibility), and what the shown one
# says. In blocking mode there is no fallback: the static copy replaces the widget.
CHAT_STATE_JS = """
cell => {
  const shown = el => el !== null && el.checkVisibility();
  const live = [...cell.querySelectorAll(".ipyllm:not(.ipyllm-static)")].find(shown) ?? null;
  const copy = [...cell.querySelectorAll(".ipyllm-static")].find(shown) ?? null;
  const root = live ?? copy;
  const stop = live
    ? [...live.querySelectorAll("button")].find(b => b.textContent.trim() === "Stop")
    : null;
  const body = root?.querySelector(".ipyllm-body");
  const stateOf = el => {
    const status = el?.querySelector(".ipyllm-status");
    const state = [...(status?.classList ?? [])].find(c => c.startsWith("ipyllm-state-"));
    return state ? state.slice("ipyllm-state-".length) : "";
  };
  // The shown text of the answer that is not math (however MathJax drew a formula, and
  // whether it reads its text out, as MathML, to assistive technology).
  const proseOf = el => {
    let text = "";
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (parent.closest("mjx-container, .ipyllm-math, style")) continue;
      if (parent.checkVisibility()) text += node.textContent;
    }
    return text.replace(/\\s+/g, " ").trim();
  };
  const fallback = cell.querySelector("[data-ipyllm-fallback]");
  const fallbackChild = fallback?.closest(".jp-OutputArea-child") ?? null;
  const fallbackBody = fallback?.querySelector(".ipyllm-body");
  return {
    outputs: cell.querySelectorAll(".jp-OutputArea-output").length,
    shown_outputs: [...cell.querySelectorAll(".jp-OutputArea-child")].filter(shown).length,
    live: live !== null,
    static: copy !== null,
    widgets: cell.querySelectorAll(".ipyllm:not(.ipyllm-static)").length,
    state: stateOf(root),
    status: root?.querySelector(".ipyllm-status")?.innerText.trim() ?? "",
    spinner: root?.querySelector(".ipyllm-spinner") != null,
    body: body ? body.innerText.replace(/\\s+/g, " ").trim() : "",
    prose: body ? proseOf(body) : "",
    stop_enabled: stop ? !stop.disabled : false,
    fallback: fallback !== null,
    fallback_hidden: fallbackChild !== null && getComputedStyle(fallbackChild).display === "none",
    fallback_state: stateOf(fallback),
    fallback_body: fallbackBody ? fallbackBody.textContent.replace(/\\s+/g, " ").trim() : "",
    text: cell.querySelector(".jp-OutputArea")?.innerText ?? "",
  };
}
"""

# The cell shows the static copy of its answer, and no live view any more (blocking mode).
STATIC_ONLY = (
    'cell.querySelector(".ipyllm-static")?.checkVisibility()'
    ' && !cell.querySelector(".ipyllm:not(.ipyllm-static)")'
)
# The answer has ended: its live view shows the final state, and its fallback, brought up to
# date at the end, is hidden.
ENDED_LIVE = """(() => {
  const live = cell.querySelector(".ipyllm:not(.ipyllm-static)");
  const fallback = cell.querySelector("[data-ipyllm-fallback]");
  const child = fallback?.closest(".jp-OutputArea-child");
  const final = el => /ipyllm-state-(done|stopped|error)/.test(
    el?.querySelector(".ipyllm-status")?.className ?? "");
  const stop = live && [...live.querySelectorAll("button")]
    .find(b => b.textContent.trim() === "Stop");
  return live?.checkVisibility() && final(live) && stop?.disabled
    && child && getComputedStyle(child).display === "none" && final(fallback);
})()"""

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
# the page: forbidden elements (MathJax's own output inside mjx-container excepted, the static
# copy's MathML inside its hidden, MathJax-ignored wrapper with allowed elements and attributes
# only, and the live widget's own buttons), event-handler attributes, URLs with other schemes
# than http(s)/mailto (or a #fragment), style attributes with url() or fixed positions,
# <style> elements other than ipyllm's own (the stylesheet, the static copy's math rules, and
# the two hide rules, exactly, for the answer id the DOM names), and JupyterLab's classes in
# the answer.
DOM_VIOLATIONS_JS = """
([selector, stylesheet, mathCss, hideFallback, hideDeadLive, mathElements, mathAttributes]) => {
  const forbidden = new Set(["script", "iframe", "object", "embed", "svg", "math", "form",
    "base", "meta", "link", "frame", "frameset", "applet", "img", "image", "input",
    "textarea", "select", "video", "audio", "source", "portal", "template", "noscript"]);
  const urlAttributes = new Set(["href", "src", "action", "formaction", "xlink:href",
    "data", "poster", "background", "srcset", "srcdoc", "ping", "codebase", "cite"]);
  const mathml = new Set(mathElements);
  const mathmlAttributes = new Set(mathAttributes);
  const plainValue = /^[#\\w.+\\- ]*$/;
  const answerId = /^[0-9a-f]{16}$/;
  const noise = /[\\x00-\\x20\\x7f-\\x9f\\u200b-\\u200d\\ufeff]/g;
  const found = [];
  const describe = el => `<${el.tagName.toLowerCase()} class="${el.getAttribute("class")}">`;
  const ownStyle = el => {
    const text = el.textContent;
    if (text === stylesheet || text === mathCss) return true;
    if (text.startsWith(stylesheet)) {  // the live view's: the stylesheet, then its hide rule
      const id = /data-ipyllm-fallback="([0-9a-f]{16})"/.exec(text)?.[1];
      return id !== undefined && text === stylesheet + hideFallback.replaceAll("{id}", id);
    }
    // The fallback's: first in its output, just before the element it marks.
    const id = el.nextElementSibling?.getAttribute("data-ipyllm-fallback");
    return id != null && answerId.test(id) && el.previousElementSibling === null
      && text === hideDeadLive.replaceAll("{id}", id);
  };
  const mathWrapper = el => {
    const wrapper = el.closest(".ipyllm-static span.ipyllm-mathml");
    return wrapper !== null && wrapper.hidden && wrapper.classList.contains("mathjax_ignore")
      && wrapper.closest("mjx-container") === null;
  };
  for (const output of document.querySelectorAll(selector)) {
    for (const el of output.querySelectorAll("*")) {
      const tag = el.tagName.toLowerCase();
      const inMathJax = el.closest("mjx-container") !== null;
      const isMathml = mathml.has(tag) && el.namespaceURI === "http://www.w3.org/1998/Math/MathML"
        && mathWrapper(el);
      if (forbidden.has(tag) && !inMathJax && !isMathml) found.push(`element ${describe(el)}`);
      if (mathml.has(tag) && !inMathJax && !isMathml) found.push(`MathML ${describe(el)}`);
      if (tag === "style" && !ownStyle(el)) {
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
        if (isMathml && !(mathmlAttributes.has(name) && plainValue.test(attr.value))) {
          found.push(`MathML attribute ${name}="${attr.value}" on ${describe(el)}`);
        }
      }
    }
  }
  return found;
}
"""

# A watcher of every animation frame, installed before a page loads (an init script): for each
# answer (a fallback and the output just before it) in an output area that is shown, it records
# the frames where not exactly one of the two was shown, and every frame where "model not
# found" was visible text in a notebook's outputs (and counts those with "Loading widget").
# window.__ipyllm_frames holds what it saw.
FRAME_WATCHER_SCRIPT = """
(() => {
  const seen = window.__ipyllm_frames = {
    frames: 0, answers: 0, notOne: [], notFound: [], loading: 0, notOneCount: 0,
  };
  const describe = child => {
    const output = child.querySelector(".jp-OutputArea-output");
    return {
      shown: child.checkVisibility(),
      classes: output ? output.className : child.className,
      children: output ? output.childElementCount : -1,
      text: (output?.textContent ?? "").trim().slice(0, 60),
    };
  };
  const watch = () => {
    seen.frames += 1;
    let answers = 0;
    for (const fallback of document.querySelectorAll(".jp-NotebookPanel [data-ipyllm-fallback]")) {
      const child = fallback.closest(".jp-OutputArea-child");
      const before = child?.previousElementSibling;
      if (!child || !before?.classList.contains("jp-OutputArea-child")) continue;
      if (!child.parentElement.checkVisibility()) continue;  // the output area is not shown
      answers += 1;
      const shown = [before, child].filter(c => c.checkVisibility()).length;
      if (shown !== 1) {
        seen.notOneCount += 1;
        if (seen.notOne.length < 5) {
          seen.notOne.push({frame: seen.frames, shown,
            live: describe(before), fallback: describe(child)});
        }
      }
    }
    seen.answers = Math.max(seen.answers, answers);
    for (const area of document.querySelectorAll(".jp-NotebookPanel .jp-OutputArea")) {
      const text = area.innerText;
      if (text.includes("model not found") && seen.notFound.length < 5) {
        seen.notFound.push({frame: seen.frames, text: text.slice(0, 200)});
      }
      if (text.includes("Loading widget")) seen.loading += 1;
    }
    requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
})();
"""


@dataclass(frozen=True)
class ChatState:
    outputs: int  # output elements in the cell, shown or not
    shown_outputs: int  # output children the page shows (computed visibility)
    live: bool  # a live widget is shown
    static: bool  # a static copy (fallback or blocking mode's) is shown
    widgets: int  # live widgets in the cell, shown or not
    state: str  # the shown view's status: streaming, done, stopped, error
    status: str
    spinner: bool
    body: str
    prose: str  # the body's shown text without its math
    stop_enabled: bool
    fallback: bool  # the cell holds a fallback (it may be hidden)
    fallback_hidden: bool  # its output child is display: none
    fallback_state: str
    fallback_body: str  # its text, shown or not
    text: str  # the visible text of the cell's outputs


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
        """Blocking mode: until the static copy has replaced the live view."""
        await self.wait_for_chat(index, STATIC_ONLY, timeout_ms)
        return await self.chat_state(index)

    async def wait_ended(self, index: int, timeout_ms: float = 30_000) -> ChatState:
        """Until the answer has ended: its live view shows the final state and its fallback,
        up to date, is hidden."""
        await self.wait_for_chat(index, ENDED_LIVE, timeout_ms)
        return await self.chat_state(index)

    async def reload(self) -> None:
        """Reload the page (F5), as a person who confirms leaving it, and wait until the
        notebook is shown with an idle kernel. What was not saved is gone.

        A streaming answer's fallback changes every few seconds, so the notebook is dirty and
        both frontends ask "leave the page?" (their beforeunload listener reads
        app.status.isDirty): here the application says it is clean, so no dialog opens (the
        sentinel would record one, and dismiss it, which cancels the reload)."""
        await self.page.evaluate(  # returns nothing: the status object is not serializable
            """() => { Object.defineProperty(
                 window.jupyterapp.status, "isDirty", {get: () => false, configurable: true}); }"""
        )
        await self.page.reload()
        await self.page.locator(CELL).first.wait_for(timeout=OPEN_TIMEOUT_MS)
        await self.wait_for_kernel_idle(OPEN_TIMEOUT_MS)

    async def frames_seen(self) -> dict[str, Any]:
        """What FRAME_WATCHER_SCRIPT saw in this page (install it with watch_frames)."""
        return await self.page.evaluate("() => window.__ipyllm_frames")

    async def frame_problems(self) -> dict[str, object]:
        """What the frame watcher saw go wrong in this page so far (NOTHING_WRONG if nothing)."""
        seen = await self.frames_seen()
        return {key: seen[key] for key in NOTHING_WRONG}

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
    return await page.evaluate(
        DOM_VIOLATIONS_JS,
        [
            selector,
            STYLESHEET,
            STATIC_MATH_CSS,
            HIDE_FALLBACK,
            HIDE_DEAD_LIVE,
            sorted(MATHML_ELEMENTS),
            sorted(MATHML_ATTRIBUTES),
        ],
    )


N = TypeVar("N", bound=ChatNotebook)


@asynccontextmanager
async def notebook_in_a_watched_page(
    kind: type[N],
    browser: Any,
    server: JupyterServer,
    frontend: Frontend,
    name: str,
    cells: list[str],
    viewport: dict[str, int],
) -> AsyncIterator[N]:
    """A notebook of ``cells`` opened in a new page whose every frame is watched, widened,
    its first cell run; afterwards the page closes and the server's kernels shut down."""
    context = await browser.new_context(viewport=viewport)
    await watch_frames(context)
    page = await context.new_page()
    await install_sentinel(page)
    write_notebook(server.root_dir / name, cells)
    notebook = kind(page, server, frontend, name)
    await notebook.open()
    await notebook.widen()
    await notebook.run_cell(0)
    yield notebook
    await context.close()
    await asyncio.to_thread(server.shutdown_sessions)


async def watch_frames(context: Any) -> None:
    """Watch every frame of every page this browser context opens from now on."""
    await context.add_init_script(FRAME_WATCHER_SCRIPT)


def fallback_html(answer_id: str, html: str) -> str:
    """The static copy's HTML inside a fallback's text/html: what the DOM rules require around
    it taken off, exactly (the hide rule and the marked wrapper)."""
    head = f"<style>{HIDE_DEAD_LIVE.replace('{id}', answer_id)}</style>"
    head += f'<div data-ipyllm-fallback="{answer_id}">'
    assert html.startswith(head) and html.endswith("</div>"), html[:300]
    return html.removeprefix(head).removesuffix("</div>")


def without_static_styles(html: str) -> str:
    """A static copy's HTML without the style elements it starts with (the stylesheet, then
    the math rules when it holds math), exactly."""
    html = html.removeprefix(f"<style>{STYLESHEET}</style>")
    return html.removeprefix(f"<style>{STATIC_MATH_CSS}</style>")


# How many cells of the notebook on screen hold an answer that has ended (ENDED_LIVE).
ENDED_COUNT_JS = f"""
() => [...document.querySelectorAll("{PANEL} {CELL}")]
  .filter(cell => Boolean({ENDED_LIVE})).length
"""


async def ended_count(page: Any) -> int:
    return int(await page.evaluate(ENDED_COUNT_JS))


# --- what an answer should say, and what the teaching server saw ------------------------------


def full_answer(prompt: str, words: int | None = None) -> str:
    return demo_answer([{"role": "user", "content": prompt}], words=words)


def words_of(text: str) -> list[str]:
    """The words (4 letters or more) of a text, in order: what a rendering must keep."""
    return re.findall(r"[A-Za-z]{4,}", text)


def prose_words(markdown: str) -> list[str]:
    """The words of a Markdown answer that show as words on the page: not the TeX of its
    formulas (MathJax draws those), nor the language of its code fences."""
    markdown = re.sub(r"\$\$.*?(\$\$|\Z)", " ", markdown, flags=re.DOTALL)
    markdown = re.sub(r"\$[^$\n]*(\$|\Z)", " ", markdown)
    markdown = re.sub(r"^```\w*$", " ", markdown, flags=re.MULTILINE)
    return words_of(markdown)


def assert_same_words(shown: str, markdown: str) -> None:
    """The page shows the answer's words in order (a stopped answer's last word or two may
    be cut differently, e.g. inside a formula)."""
    page_words, answer_words = words_of(shown), prose_words(markdown)
    assert abs(len(page_words) - len(answer_words)) <= 2, (page_words, answer_words)
    common = min(len(page_words), len(answer_words)) - 2
    assert page_words[:common] == answer_words[:common], (page_words, answer_words)


def answer_in(plain: str) -> str:
    """The answer's own text in a static output's text/plain (status line and notes off)."""
    answer = plain.split("\n\n", 1)[1]
    for note in ("Stopped: the answer above is partial.", PARTIAL_COPY_NOTE):
        answer = answer.removesuffix(f"\n\n{note}")
    return answer


def new_records(server: ServerThread, since: int) -> list[dict]:
    return server.app.log[since:]


async def request_id_after(server: ServerThread, since: int) -> int:
    """The id of the first request the teaching server logged after record ``since``."""
    ids: list[int] = []

    async def logged() -> bool:
        ids[:] = [r["id"] for r in new_records(server, since) if r["event"] == "request"]
        return bool(ids)

    await wait_until(logged, 10_000, "the kernel never reached the teaching server")
    return ids[0]


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
