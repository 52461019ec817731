"""A real-browser harness: a Jupyter server, Debian's chromium driven by Playwright, notebooks.

The same helpers drive JupyterLab 4 (``/lab/tree/<nb>``) and Notebook 7 (``/notebooks/<nb>``):
both frontends render notebooks with the same JupyterLab widgets, so one set of DOM selectors
serves both (verified against JupyterLab 4.6 and Notebook 7.6).

Playwright's async API, on pytest-asyncio's session loop: its sync API leaves its own event
loop set as the thread's running loop for as long as it lives, which breaks every
pytest-asyncio test run after it. Playwright is imported only for type checking here, so that
collecting the tests works on a machine without it (conftest.py decides to skip or fail).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit

import nbformat

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        Dialog,
        Locator,
        Page,
        Playwright,
        Request,
        Response,
        Route,
    )

Frontend = Literal["lab", "notebook7"]
FRONTENDS: tuple[Frontend, ...] = ("lab", "notebook7")

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium keeps calling Google's hosts, which this
# machine's closed network refuses many at a time.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"
# Every URL that does not stay on this machine. A regex, not a Python callable: Playwright
# matches a regex in its driver, while a callable routes every request through Python.
FOREIGN_URL = re.compile(
    r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:[/?#]|$)"
    r"|(?:data|blob|about):)"
)

SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 20.0
# Opening a notebook includes loading the frontend and starting a kernel on 2 busy cores.
OPEN_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 30_000
POLL_INTERVAL_S = 0.02

# The notebook panel on screen: JupyterLab hides other tabs' panels with lm-mod-hidden.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CELL = ".jp-Notebook .jp-Cell"
INPUT_PROMPT = ".jp-InputArea-prompt"
# One element per output (display_data, execute_result, stream...) of a cell.
OUTPUT = ".jp-OutputArea-output"
# The kernel status as the frontend's session knows it, for the notebook at `path`. Not the
# toolbar's status circle: that shows "idle" before any kernel exists, while the page loads.
# window.jupyterapp exists because the server runs with expose_app_in_browser.
KERNEL_STATUS_JS = """
path => {
  const app = window.jupyterapp;
  if (!app) return null;
  const panel = Array.from(app.shell.widgets("main")).find(w => w.context?.path === path);
  const kernel = panel?.sessionContext?.session?.kernel;
  return kernel?.connectionStatus === "connected" ? kernel.status : null;
}
"""
FINISHED_PROMPT = re.compile(r"^\[\d+\]:$")

# Settings the harness gives both frontends (they share JupyterLab's settings directory).
FRONTEND_SETTINGS: dict[str, dict[str, object]] = {
    # No news or update toasts over the notebook, and no fetches for them.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell stays in the DOM, so locators and inner_text see off-screen cells too.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

SENTINEL_SCRIPT = """
window.__ipyllm_xss = 0;
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = () => { window.__ipyllm_xss += 1; return null; };
}
"""


# --- the Jupyter server ---------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A running jupyter_server with JupyterLab and Notebook 7 loaded, on loopback."""

    base_url: str
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]

    def notebook_url(self, frontend: Frontend, name: str) -> str:
        path = quote(name)
        if frontend == "lab":
            # reset: start from an empty workspace, not the tabs an earlier test left open.
            return f"{self.base_url}/lab/tree/{path}?reset&token={self.token}"
        return f"{self.base_url}/notebooks/{path}?token={self.token}"

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def restart_kernel(self, notebook_name: str) -> None:
        """Restart the kernel of one notebook's session (returns once it has restarted)."""
        sessions = self.api("GET", "/api/sessions")
        assert isinstance(sessions, list)
        [kernel_id] = [s["kernel"]["id"] for s in sessions if s.get("path") == notebook_name]
        self.api("POST", f"/api/kernels/{kernel_id}/restart")

    def shutdown_sessions(self) -> None:
        """Shut down every notebook session and its kernel, so kernels don't pile up."""
        sessions = self.api("GET", "/api/sessions")
        assert isinstance(sessions, list)
        for session in sessions:
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """Shut the server down through its API (which stops its kernels), then check for
        orphans: every child process it had must be gone."""
        children = _child_pids(self.process.pid)
        try:
            self.api("POST", "/api/shutdown")
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except Exception:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            survivors = _wait_gone(children, SERVER_STOP_TIMEOUT_S)
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)
        assert not survivors, f"kernel processes outlived the server: {survivors}"


def _child_pids(parent: int) -> list[int]:
    """Direct children of a process, from /proc (Linux)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = [pid for pid in pids if _is_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _is_alive(pid)]
    return alive


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_python3_kernelspec(jupyter_path: Path) -> None:
    """A python3 kernelspec for this interpreter, first on JUPYTER_PATH, so the kernel the
    server starts has this environment's ipykernel, ipywidgets and ipyllm."""
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def _write_frontend_settings(settings_dir: Path) -> None:
    for plugin, values in FRONTEND_SETTINGS.items():
        target = settings_dir / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def _wait_until_serving(server: JupyterServer, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter server exited:\n{log.read_text()[-3000:]}")
        try:
            server.api("GET", "/api/status")
            return
        except OSError:
            time.sleep(0.1)
    server.process.kill()
    raise TimeoutError(f"jupyter server did not answer:\n{log.read_text()[-3000:]}")


@contextmanager
def running_jupyter_server(workdir: Path) -> Iterator[JupyterServer]:
    """Start jupyter_server on 127.0.0.1 at a free port, rooted in ``workdir/root``, with its
    config, data, runtime, settings and workspaces isolated under ``workdir``."""
    root_dir = workdir / "root"
    root_dir.mkdir()
    jupyter_path = workdir / "data"
    _write_python3_kernelspec(jupyter_path)
    _write_frontend_settings(workdir / "settings")
    env = {
        **os.environ,
        "JUPYTER_PATH": str(jupyter_path),
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(workdir / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "workspaces"),
    }
    port = _free_port()
    token = secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyter_server",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        # window.jupyterapp: the frontends' session state, for the kernel status.
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        # Nothing reaches outside the machine from the server either.
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]  # fmt: skip
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, cwd=root_dir, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root_dir, process)
    _wait_until_serving(server, log)
    try:
        yield server
    finally:
        server.stop()


# --- the browser ----------------------------------------------------------------------------


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    for module in ("playwright", "jupyter_server", "jupyterlab", "notebook"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium: Playwright cannot download its own browser here. launch() gives it
    a fresh temporary user-data-dir."""
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@dataclass
class Sentinel:
    """What a page did that a test of hostile output wants to know about."""

    dialogs: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)


_SENTINELS: weakref.WeakKeyDictionary[Page, Sentinel] = weakref.WeakKeyDictionary()


async def install_sentinel(page: Page, sentinel: Sentinel | None = None) -> Sentinel:
    """Count script execution through window.__ipyllm_xss and alert/confirm/prompt, record
    dialogs, and abort (and record) every request to a host other than loopback. Pass an
    existing ``sentinel`` to keep recording into it."""
    sentinel = sentinel or Sentinel()

    async def on_dialog(dialog: Dialog) -> None:
        sentinel.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    async def block(route: Route, request: Request) -> None:
        sentinel.foreign_requests.append(request.url)
        await route.abort("blockedbyclient")

    await page.add_init_script(SENTINEL_SCRIPT)
    page.on("dialog", on_dialog)
    await page.route(FOREIGN_URL, block)
    _SENTINELS[page] = sentinel
    return sentinel


async def page_report(page: Page) -> dict[str, object]:
    """``{"xss": int, "dialogs": [...], "foreign_requests": [...]}`` for a sentinel page.
    The xss count is the current document's: a reload starts it at 0 again."""
    sentinel = _SENTINELS[page]
    return {
        "xss": await page.evaluate("() => window.__ipyllm_xss"),
        "dialogs": list(sentinel.dialogs),
        "foreign_requests": list(sentinel.foreign_requests),
    }


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout_ms: float, failure: str
) -> None:
    """Poll ``condition`` every few milliseconds; raise TimeoutError(failure) after timeout."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        await asyncio.sleep(POLL_INTERVAL_S)


# --- notebooks ------------------------------------------------------------------------------


def write_notebook(path: Path, sources: list[str]) -> Path:
    """An .ipynb of code cells with the python3 kernelspec (so no kernel picker appears)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


@dataclass(frozen=True)
class OutputSample:
    """One observation of a cell's outputs: the text, and how many output elements held it."""

    text: str
    output_count: int


class NotebookPage:
    """One notebook opened in one frontend, on one sentinel page."""

    def __init__(self, page: Page, server: JupyterServer, frontend: Frontend, name: str) -> None:
        self.page = page
        self.server = server
        self.frontend = frontend
        self.name = name

    @property
    def path(self) -> Path:
        return self.server.root_dir / self.name

    # Opening

    async def open(self) -> None:
        """Load the notebook and wait until its cells are shown and its kernel is idle."""
        await self.page.goto(self.server.notebook_url(self.frontend, self.name))
        await self.page.locator(CELL).first.wait_for(timeout=OPEN_TIMEOUT_MS)
        await self.wait_for_kernel_idle(OPEN_TIMEOUT_MS)

    async def reopen(self, while_closed: Callable[[], Awaitable[object]] | None = None) -> None:
        """Close the notebook's tab and open the notebook in a new one, from the server,
        after ``while_closed()`` if given (e.g. restart the kernel meanwhile).
        The sentinel's records carry over; its xss count starts again at 0 in the new tab."""
        sentinel = _SENTINELS[self.page]
        context = self.page.context
        # Without beforeunload: JupyterLab's "leave the page?" prompt must not block this.
        await self.page.close(run_before_unload=False)
        if while_closed is not None:
            await while_closed()
        self.page = await context.new_page()
        await install_sentinel(self.page, sentinel)
        await self.open()

    async def wait_for_kernel_idle(self, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        await self.page.wait_for_function(
            f"path => ({KERNEL_STATUS_JS})(path) === 'idle'",
            arg=self.name,
            timeout=timeout_ms,
            polling=POLL_INTERVAL_S * 1000,
        )

    async def kernel_status(self) -> str | None:
        """This notebook's kernel status now: "idle", "busy", "starting"..., or None while
        the frontend has no connected kernel for it."""
        status = await self.page.evaluate(KERNEL_STATUS_JS, self.name)
        return str(status) if status is not None else None

    # Cells

    def cell(self, index: int) -> Locator:
        return self.page.locator(f"{PANEL} {CELL}").nth(index)

    def output_area(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-OutputArea")

    def outputs(self, index: int) -> Locator:
        return self.cell(index).locator(OUTPUT)

    async def run_cell(self, index: int, timeout_ms: float = RUN_TIMEOUT_MS) -> Locator:
        """Select the cell, run it with Ctrl+Enter (run without advancing, so no cell is
        added), wait until it has finished, and return its output area."""
        await self.wait_for_kernel_idle()
        prompt = self.cell(index).locator(INPUT_PROMPT)
        before = (await prompt.inner_text()).strip()
        await prompt.click()  # selects the cell in command mode
        await self.page.keyboard.press("Control+Enter")

        async def started() -> bool:
            return (await prompt.inner_text()).strip() != before  # "[*]:" or already done

        async def finished() -> bool:
            return bool(FINISHED_PROMPT.match((await prompt.inner_text()).strip()))

        await wait_until(started, timeout_ms, f"cell {index} did not start")
        await wait_until(finished, timeout_ms, f"cell {index} did not finish")
        return self.output_area(index)

    async def output_text(self, index: int) -> str:
        """The visible text of the cell's outputs (prompts excluded), one output per line."""
        texts = await self.outputs(index).all_inner_texts()
        return "\n".join(text.strip() for text in texts)

    async def output_html(self, index: int) -> str:
        inner_htmls = await self.outputs(index).evaluate_all(
            "elements => elements.map(e => e.innerHTML)"
        )
        return "\n".join(inner_htmls)

    async def wait_for_output_text(
        self, index: int, expected: str, timeout_ms: float = RUN_TIMEOUT_MS
    ) -> None:
        async def shown() -> bool:
            return expected in await self.output_text(index)

        await wait_until(shown, timeout_ms, f"{expected!r} never appeared in cell {index}")

    async def sample_output_texts(
        self, index: int, count: int, interval: float, timeout_s: float = 10.0
    ) -> list[OutputSample]:
        """Watch a changing output: poll every ``interval`` seconds and keep each new text,
        until ``count`` distinct samples are collected."""
        samples: list[OutputSample] = []
        deadline = time.monotonic() + timeout_s
        while len(samples) < count:
            sample = OutputSample(await self.output_text(index), await self.outputs(index).count())
            if not samples or sample.text != samples[-1].text:
                samples.append(sample)
            elif time.monotonic() > deadline:
                raise TimeoutError(f"output stopped changing after {samples!r}")
            await asyncio.sleep(interval)
        return samples

    async def click_output_button(self, index: int, text: str) -> None:
        """Click the button labelled ``text`` inside the cell's output (e.g. "Stop").

        Matched on the button's text, not its accessible name: an icon (ipywidgets' ``icon=``)
        adds its CSS glyph to the accessible name."""
        label = re.compile(rf"^\s*{re.escape(text)}\s*$")
        await self.output_area(index).locator("button").filter(has_text=label).click()

    # Saving and artifacts

    async def save(self) -> nbformat.NotebookNode:
        """Save through the frontend (Ctrl+S) and return the .ipynb read back from disk."""
        await self.cell(0).locator(INPUT_PROMPT).click()  # keyboard focus in the notebook
        # The server answers the frontend's PUT once the file is written (it writes in place,
        # so the file's mtime moves before its content is complete).
        async with self.page.expect_response(
            self._is_save_response, timeout=RUN_TIMEOUT_MS
        ) as saved:
            await self.page.keyboard.press("Control+s")
        response = await saved.value
        assert response.ok, f"saving {self.name} failed: HTTP {response.status}"
        return nbformat.read(self.path, as_version=4)

    def _is_save_response(self, response: Response) -> bool:
        return response.request.method == "PUT" and urlsplit(response.url).path.endswith(
            f"/api/contents/{quote(self.name)}"
        )

    async def screenshot(self, name: str, cell_index: int | None = None) -> Path:
        """A PNG of the page, or of one cell, in artifacts/screenshots/ (kept by CI)."""
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOT_DIR / f"{self.frontend}-{name}.png"
        if cell_index is None:
            await self.page.screenshot(path=target)
        else:
            await self.cell(cell_index).screenshot(path=target)
        return target

    async def report(self) -> dict[str, object]:
        return await page_report(self.page)


# What the open_notebook fixture gives a test: code cell sources in, an opened notebook out.
OpenNotebook = Callable[[list[str]], Awaitable[NotebookPage]]
