"""API keys never leak: not into notebooks, widget state, exports, logs, reprs or errors.

A real kernel gets canary keys in its environment (one key-shaped, one not, so that
only exact redaction can catch it, and one passed as ``api_key=``) and runs %%chat
against the teaching server: answers that succeed, fail (401, 500, a dropped
connection, an error raised in a cell) and are stopped with a Stop click. Then
everything a user could keep or share is gathered: the notebook saved as a frontend
saves it (outputs from iopub, widget state from comm messages), every iopub message
and shell reply, ``%chat export`` files and anything else the kernel wrote in its
folder, the kernel's stdout, stderr and debug log, the teaching server's log, and the
``repr`` and traceback of every result and error. No fragment of any canary may
appear. Servers that echo the key back are imitated in-process (the teaching server
never does), for errors before and during a stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import traceback
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import jupyter_client.manager
import nbformat
import pytest

import ipyllm
from ipyllm import AuthenticationError, ChatView, ProviderError
from ipyllm.dialects import get_dialect
from ipyllm.render import provenance, static_bundle
from ipyllm.server import ServerThread

from . import kernels
from .kernels import Kernel, Message
from .widgets import Frontend

pytestmark = pytest.mark.timeout(180)

OPENAI_KEY = f"sk-canary-{secrets.token_hex(12)}"
ANTHROPIC_KEY = f"canary-anthropic-{secrets.token_hex(12)}"  # not key-shaped on purpose
PASSED_KEY = f"sk-proj-canary-{secrets.token_hex(12)}"  # given as api_key=..., from a variable
CANARIES = [OPENAI_KEY, ANTHROPIC_KEY, PASSED_KEY]
FAST = "rate=0,latency=0,words=30"


def fragments(key: str) -> list[str]:
    """The key's random part, whole and its first and last 8 characters (a masked echo)."""
    random_part = key.rsplit("-", 1)[1]
    return [random_part, random_part[:8], random_part[-8:]]


def leaked(text: str) -> list[str]:
    return [fragment for key in CANARIES for fragment in fragments(key) if fragment in text]


# -- a real kernel, its outputs and its files --------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0) as running:
        yield running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secrets-kernel")


@pytest.fixture(scope="module")
def kernel(workdir: Path) -> Iterator[Kernel]:
    output = (workdir / "kernel-output.txt").open("wb")
    # The kernel's own stdout and stderr go to a file, and it runs in its own folder,
    # so whatever it prints or writes can be searched.
    start = partial(
        jupyter_client.manager.start_new_kernel,
        cwd=str(workdir),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    env = {
        "JPY_SESSION_NAME": "secrets.ipynb",
        "OPENAI_API_KEY": OPENAI_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "IPYLLM_TEST_PASSED_KEY": PASSED_KEY,
    }
    with patch.object(kernels, "start_new_kernel", start):
        running = Kernel("python3", env)
    try:
        running.run(
            "import logging\n"
            "logging.basicConfig(filename='kernel-debug.log', level=logging.DEBUG, force=True)\n"
            "%load_ext ipyllm"
        )
        yield running
    finally:
        running.close()
        output.close()


class Notebook:
    """Cells run as a frontend runs them, and the .ipynb it would save."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.cells: list[tuple[str, Message]] = []
        self.replies: list[Message] = []

    def run(self, code: str, *, ok: bool = True, timeout: float = 60) -> Message:
        reply, _ = self.kernel.execute(code, timeout=timeout)
        assert (reply["content"]["status"] == "ok") is ok, reply["content"]
        self.cells.append((code, reply))
        self.replies.append(reply)
        self.kernel.outputs_of(reply, "stream")  # waits for the cell's idle status
        return reply

    def wait_after(self, reply: Message, predicate: Any, timeout: float = 20) -> None:
        """Wait for a message that arrived after the cell was sent."""
        sent = reply["parent_header"]["date"]
        self.kernel.wait_for(lambda m: m["header"]["date"] >= sent and predicate(m), timeout)

    def chat(self, code: str, *, stop: bool = False) -> str:
        """Run a %%chat cell and wait for its static copy; return its text/plain."""
        reply = self.run(code)
        (display_id,) = self.kernel.display_ids(reply)
        if stop:  # once the first text is on screen, as a person would
            self.wait_after(reply, lambda m: m["msg_type"] == "comm_msg" and "<h2" in str(m))
            self.kernel.click(self.kernel.stop_buttons()[-1])
        final = self.kernel.final_display(display_id, timeout=60)
        return str(final["content"]["data"]["text/plain"])

    def saved(self) -> str:
        """The notebook file: outputs as a frontend keeps them, and the widget state."""
        messages = every_message(self.kernel)
        cells = []
        for code, reply in self.cells:
            parent = reply["parent_header"]["msg_id"]
            outputs = []
            for message in messages:
                if message["parent_header"].get("msg_id") != parent:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    outputs.append(nbformat.v4.new_output("stream", name=content["name"],
                                                          text=content["text"]))  # fmt: skip
                elif kind in ("display_data", "execute_result"):
                    output = nbformat.v4.new_output(
                        kind, data=content["data"], metadata=content.get("metadata", {})
                    )
                    if kind == "execute_result":
                        output.execution_count = content["execution_count"]
                    display_id = content.get("transient", {}).get("display_id")
                    outputs.append(output)
                    # A later update_display_data replaces it, from whichever parent.
                    for update in messages:
                        transient = update["content"].get("transient", {})
                        if (
                            update["msg_type"] == "update_display_data"
                            and display_id is not None
                            and transient.get("display_id") == display_id
                        ):
                            output.data = update["content"]["data"]
                            output.metadata = update["content"].get("metadata", {})
                elif kind == "error":
                    outputs.append(nbformat.v4.new_output(
                        "error", ename=content["ename"], evalue=content["evalue"],
                        traceback=content["traceback"],
                    ))  # fmt: skip
            cells.append(nbformat.v4.new_code_cell(code, outputs=outputs))
        notebook = nbformat.v4.new_notebook(cells=cells)
        notebook.metadata["widgets"] = {
            "application/vnd.jupyter.widget-state+json": {
                "version_major": 2,
                "version_minor": 0,
                "state": widget_state(messages),
            }
        }
        nbformat.validate(notebook)
        return nbformat.writes(notebook)


def every_message(kernel: Kernel) -> list[Message]:
    """The iopub messages so far: a copy of the list its reader thread appends to.

    Copying a list is one step under the GIL, so no append is seen half-done.
    """
    return [message for _, message in list(kernel.messages)]


def widget_state(messages: list[Message]) -> dict[str, Any]:
    """Each widget model's last state, as a widget manager holds it (closed ones too)."""
    models: dict[str, dict[str, Any]] = {}
    for message in messages:
        content = message["content"]
        if message["msg_type"] == "comm_open":
            state = dict(content["data"].get("state", {}))
            models[content["comm_id"]] = {
                "model_name": state.get("_model_name"),
                "model_module": state.get("_model_module"),
                "model_module_version": state.get("_model_module_version"),
                "state": state,
            }
        elif message["msg_type"] == "comm_msg" and content["comm_id"] in models:
            models[content["comm_id"]]["state"].update(content["data"].get("state", {}))
    return models


# -- the kernel test ----------------------------------------------------------------------------


def test_no_key_reaches_anything_a_notebook_keeps_or_shows(
    kernel: Kernel, server: ServerThread, workdir: Path
) -> None:
    book = Notebook(kernel)
    url = server.url

    def cell(provider: str, options: str, prompt: str, flags: str = "") -> str:
        base = f"{url}/with/{options}" + ("/v1" if provider.startswith("openai") else "")
        return f"%%chat -p {provider} --base-url {base} --session s {flags}\n{prompt}"

    shown = {
        "ok": book.chat(cell("openai", FAST, "What is streaming?")),
        "ok-anthropic": book.chat(cell("anthropic", FAST, "And with Anthropic?")),
        "401": book.chat(cell("openai", "status=401", "A refused key")),
        "401-anthropic": book.chat(cell("anthropic", "status=401", "Refused again")),
        "500": book.chat(cell("anthropic", "status=500,retry_after=0.05", "A broken server")),
        "drop": book.chat(cell("openai", f"{FAST},drop_after=5", "A dropped connection")),
        "events": book.chat(cell("openai", f"{FAST},error_after=3", "Raw events", "--events")),
        "stopped": book.chat(cell("openai", "rate=10,latency=0", "Stop me"), stop=True),
        "wait-401": book.chat(cell("openai", "status=401", "Waiting", "--wait")),
    }
    assert "done" in shown["ok"] and "done" in shown["ok-anthropic"]
    assert "refused the request (HTTP 401" in shown["401"]
    assert "ANTHROPIC_API_KEY" in shown["401-anthropic"]
    assert "HTTP 500" in shown["500"]
    assert "closed before the answer was complete" in shown["drop"]
    assert "stopped" in shown["stopped"] and "mid-stream" in shown["events"]
    # The key really was in play: the kernel resolved it from its environment.
    in_play = "__import__('ipyllm').last.stream.target.api_key == os.environ['OPENAI_API_KEY']"
    assert book.kernel.evaluate(f"(os := __import__('os')) and {in_play}") == "True"

    # A key passed as api_key=..., from a variable; one success and one 401.
    for options in (FAST, "status=401"):
        book.run(
            "import os, ipyllm\n"
            f"passed = ipyllm.chat('Passed key', provider='openai', "
            f"base_url='{url}/with/{options}/v1', api_key=os.environ['IPYLLM_TEST_PASSED_KEY'])"
        )
        book.run("await passed")
    # An error raised in a cell: the traceback is an output too.
    book.run(
        f"await ipyllm.achat('x', provider='openai', base_url='{url}/with/status=401/v1')",
        ok=False,
    )
    # reprs and tracebacks of everything a user might print.
    book.run(
        "import traceback\n"
        "magics = get_ipython().magics_manager.registry['ChatMagics']\n"
        "results = [passed, ipyllm.last]\n"
        "for turn in magics.sessions['s'].turns:\n"
        "    t = turn.transcript\n"
        "    print(repr(t), t.to_dict(), repr(t.error), t.status)\n"
        "    if t.error is not None:\n"
        "        print(''.join(traceback.format_exception(t.error)))\n"
        "for r in results:\n"
        "    print(repr(r), repr(r.stream), repr(r.stream.target), repr(r.transcript))\n"
        "try:\n"
        "    await ipyllm.achat('x', provider='anthropic', "
        f"base_url='{url}/with/status=401')\n"
        "except ipyllm.StreamError as error:\n"
        "    print(repr(error), error, error.args, vars(error))\n"
        "%chat history --session s\n"
        "%chat sessions\n"
        "%whos"
    )
    book.run(f"%chat export {workdir / 'history.md'} --session s")
    book.run(f"%chat export {workdir / 'history.json'} --session s")

    saved = book.saved()
    exported = json.loads((workdir / "history.json").read_text())
    assert len(exported["turns"]) == 9 and exported["turns"][0]["answer"]
    assert "What is streaming?" in saved and "refused the request" in saved
    assert '"state"' in saved and "ButtonModel" in saved  # widget state is in the file

    iopub = json.dumps(every_message(kernel), default=str)
    kernel_files = {
        path.name: path.read_bytes().decode("utf-8", "replace")
        for path in workdir.rglob("*")
        if path.is_file()
    }
    assert "kernel-debug.log" in kernel_files and "history.md" in kernel_files
    assert kernel_files["kernel-debug.log"], "the kernel's debug log recorded something"
    artifacts = {
        "saved notebook": saved,
        "iopub messages": iopub,
        "shell replies": json.dumps(book.replies, default=str),
        "server log": json.dumps(server.app.log),
        **{f"kernel file {name}": text for name, text in kernel_files.items()},
    }
    assert len(server.app.log) > 20
    found = {name: leaked(text) for name, text in artifacts.items() if leaked(text)}
    assert not found, f"a canary key leaked into: {found}"


# -- servers that echo the key back --------------------------------------------------------------


def _echoing(status: int, body: str, content_type: str = "application/json") -> Any:
    """A dialect transport that answers every request with this echo of the key."""

    def transport(self: Any, base_url: str) -> httpx.MockTransport:
        return httpx.MockTransport(
            lambda request: httpx.Response(
                status, headers={"content-type": content_type}, content=body.encode()
            )
        )

    return transport


def _everything_about(transcript: ipyllm.Transcript, view: ChatView, frontend: Frontend) -> str:
    error = transcript.error
    assert error is not None
    data, metadata = static_bundle(transcript, view.final_html or "", "")
    widgets = [
        frontend.value(view, "ipyllm-status-line"),
        frontend.value(view, "ipyllm-extras"),
        frontend.value(view, "ipyllm-tail"),
        frontend.joined(frontend.one(view, "ipyllm-raw"), "ipyllm-raw-segment"),
        json.dumps(frontend.log, default=str),  # and every message sent on the way
    ]
    return "\n".join(
        [
            str(error),
            repr(error),
            str(error.args),
            str(getattr(error, "server_message", "")),
            "".join(traceback.format_exception(error)),
            repr(transcript),
            json.dumps(transcript.to_dict(), default=str),
            json.dumps(provenance(transcript)),
            json.dumps(data),
            json.dumps(metadata),
            *widgets,
        ]
    )


@pytest.mark.parametrize(
    ("provider", "key", "message"),
    [
        # OpenAI quotes the key masked; a proxy may quote it whole.
        ("openai", OPENAI_KEY, f"Incorrect API key: {OPENAI_KEY[:18]}****{OPENAI_KEY[-8:]}"),
        ("openai", OPENAI_KEY, f"Incorrect API key provided: {OPENAI_KEY}."),
        ("anthropic", ANTHROPIC_KEY, f"invalid x-api-key: {ANTHROPIC_KEY}"),
        ("gemini", PASSED_KEY, f"API key not valid: {PASSED_KEY}"),
        ("ollama", PASSED_KEY, f"unauthorized: bearer {PASSED_KEY}"),
    ],
    ids=["openai-masked", "openai-whole", "anthropic", "gemini", "ollama"],
)
async def test_a_401_that_echoes_the_key_is_redacted(
    frontend: Frontend, provider: str, key: str, message: str
) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    dialect = type(get_dialect(provider))
    with patch.object(dialect, "transport", _echoing(401, body)):
        view = ChatView(events=True)
        answer = ipyllm.stream("hi", provider=provider, base_url="http://echo.invalid/v1",
                               api_key=key, raw=True)  # fmt: skip
        transcript = await view.stream(answer)
        with pytest.raises(AuthenticationError) as listing:
            await ipyllm.list_models(provider, "http://echo.invalid/v1", key)
    assert isinstance(transcript.error, AuthenticationError)
    assert "***" in str(transcript.error)  # the echo is there, masked
    text = _everything_about(transcript, view, frontend) + str(listing.value)
    text += repr(listing.value)
    assert not leaked(text), leaked(text)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_an_error_event_that_echoes_the_key_is_redacted_also_in_the_raw_events(
    frontend: Frontend, provider: str
) -> None:
    key = ANTHROPIC_KEY  # not key-shaped: only redaction of the key itself hides it
    echo = f"the key {key} was revoked"
    body, content_type = {
        "openai": (
            'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
            f'data: {{"error":{{"message":"{echo}","type":"invalid_request_error"}}}}\n\n',
            "text/event-stream",
        ),
        "anthropic": (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"Hi"}}\n\n'
            f'event: error\ndata: {{"type":"error","error":{{"type":"x","message":"{echo}"}}}}\n\n',
            "text/event-stream",
        ),
        "ollama": (
            f'{{"message":{{"content":"Hi"}},"done":false}}\n{{"error":"{echo}"}}\n',
            "application/x-ndjson",
        ),
    }[provider]
    with patch.object(type(get_dialect(provider)), "transport", _echoing(200, body, content_type)):
        view = ChatView(events=True)
        answer = ipyllm.stream("hi", provider=provider, base_url="http://echo.invalid/v1",
                               api_key=key, raw=True)  # fmt: skip
        transcript = await asyncio.wait_for(view.stream(answer), timeout=10)
    assert isinstance(transcript.error, ProviderError) and transcript.text == "Hi"
    raw_panel = frontend.joined(frontend.one(view, "ipyllm-raw"), "ipyllm-raw-segment")
    assert "was revoked" in raw_panel  # the raw events are shown, with the key masked
    everything = _everything_about(transcript, view, frontend)
    assert not leaked(everything), leaked(everything)


def test_the_canaries_are_what_the_checks_look_for() -> None:
    """The leak check itself works: a masked echo of the key is caught."""
    assert leaked(f"prefix {OPENAI_KEY[:18]}...") and leaked(f"…{ANTHROPIC_KEY[-8:]}")
    assert not leaked("sk-*** and canary-anthropic-***")
    assert os.environ.get("OPENAI_API_KEY") is None  # conftest keeps real keys out
