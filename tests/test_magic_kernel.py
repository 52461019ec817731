"""%%chat in real kernels (ipykernel 7 with ipywidgets 8, ipykernel 6 with ipywidgets 7).

The kernel talks to the teaching server over loopback; a Stop click is a real
comm_msg. JPY_SESSION_NAME is set as jupyter_server sets it, so the magic sees an
interactive frontend and streams in the background.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ipyllm.server import ServerThread, demo_answer

from .kernels import Kernel, kernel_names, running_kernel

pytestmark = pytest.mark.timeout(300)


def ask(prompt: str) -> str:
    return demo_answer([{"role": "user", "content": prompt}])


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(token_rate=40, first_token_latency=0.2) as running:
        yield running


@pytest.fixture(scope="module", params=kernel_names())
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    with running_kernel(request.param, JPY_SESSION_NAME="test.ipynb") as running:
        yield running


def chat_cell(server: ServerThread, prompt: str, options: str = "", flags: str = "") -> str:
    base = f"{server.url}/with/{options}/v1" if options else f"{server.url}/v1"
    return f"%%chat -p openai --base-url {base} {flags}\n{prompt}"


def literal(kernel: Kernel, expression: str) -> object:
    return ast.literal_eval(kernel.evaluate(expression))


def test_reply_comes_before_the_first_token_and_the_kernel_stays_usable(
    kernel: Kernel, server: ServerThread
) -> None:
    sent = time.monotonic()
    reply, replied = kernel.execute(
        chat_cell(server, "Why do we stream?", "latency=1,rate=60", "--no-history")
    )
    assert reply["content"]["status"] == "ok"
    assert replied - sent < 0.8  # the first token comes a second after the request
    one_plus_one, _ = kernel.execute("1+1")
    (result,) = kernel.outputs_of(one_plus_one, "execute_result")
    assert result["content"]["data"]["text/plain"] == "2"
    assert literal(kernel, "__import__('ipyllm').last.done") is False  # still streaming
    (display_id,) = kernel.display_ids(reply)
    final = kernel.final_display(display_id)
    assert ask("Why do we stream?") in final["content"]["data"]["text/plain"]
    assert "done" in final["content"]["data"]["text/plain"]
    assert final["content"]["metadata"]["ipyllm"]["status"] == "done"


def test_a_stop_click_closes_the_connection_and_keeps_the_partial_answer(
    kernel: Kernel, server: ServerThread
) -> None:
    prompt = f"Stop me ({kernel.manager.kernel_name})"
    reply, _ = kernel.execute(chat_cell(server, prompt, "rate=10,latency=0", "--no-history"))
    (display_id,) = kernel.display_ids(reply)
    kernel.wait_for(lambda m: m["msg_type"] == "comm_msg" and "ipyllm" in str(m["content"]))
    time.sleep(0.6)  # a few tokens in
    requests_before = len(server.app.log)
    clicked = time.time()
    kernel.click(kernel.stop_buttons()[-1])
    gone = server.app.wait_for(
        lambda r: r["event"] == "disconnect" and r["time"] >= clicked - 0.05, timeout=5
    )
    assert gone is not None, server.app.log[requests_before:]
    assert gone["time"] - clicked < 1.0
    final = kernel.final_display(display_id)["content"]
    assert "stopped" in final["data"]["text/plain"]
    assert final["metadata"]["ipyllm"]["status"] == "stopped"
    partial = literal(kernel, "__import__('ipyllm').last.text")
    assert isinstance(partial, str) and partial
    assert ask(prompt).startswith(partial) and len(partial) < len(ask(prompt))
    assert partial in final["data"]["text/plain"]  # what was shown is what is kept
    assert kernel.execute("1+1")[0]["content"]["status"] == "ok"


def test_two_cells_stream_at_once_each_into_its_own_output(
    kernel: Kernel, server: ServerThread
) -> None:
    first, _ = kernel.execute(chat_cell(server, "First question", "rate=60", "--no-history"))
    second, _ = kernel.execute(chat_cell(server, "Second question", "rate=60", "--no-history"))
    (first_id,) = kernel.display_ids(first)
    (second_id,) = kernel.display_ids(second)
    assert first_id != second_id
    first_text = kernel.final_display(first_id)["content"]["data"]["text/plain"]
    second_text = kernel.final_display(second_id)["content"]["data"]["text/plain"]
    assert ask("First question") in first_text and ask("Second question") not in first_text
    assert ask("Second question") in second_text
    running = [r for r in server.app.log if r["event"] == "request" and "rate=60" in r["path"]]
    assert len(running) >= 2


def test_rerunning_a_cell_replaces_its_turn(kernel: Kernel, server: ServerThread) -> None:
    session = f"rerun-{kernel.manager.kernel_name}"
    cell = chat_cell(server, "Tell me a fact", "rate=0,latency=0", f"--session {session} --wait")
    kernel.run(cell, cell_id="cell-a")
    kernel.run(cell, cell_id="cell-a")
    kernel.run(chat_cell(server, "Another", "rate=0,latency=0", f"--session {session} --wait"),
               cell_id="cell-b")  # fmt: skip
    kernel.run(cell, cell_id="cell-a")
    turns = literal(
        kernel,
        f"[t.prompt for t in get_ipython().magics_manager.registry['ChatMagics']"
        f".sessions['{session}'].turns]",
    )
    assert turns == ["Tell me a fact", "Another"]
    # The re-run of the first cell was sent without the later turn as history.
    sent = literal(kernel, "[m['role'] for m in __import__('ipyllm').last.transcript.messages]")
    assert sent == ["user"]


def test_a_prompt_with_code_braces_and_a_variable_is_sent_right(
    kernel: Kernel, server: ServerThread
) -> None:
    kernel.run("limit = 42\nconfig = {'model': 'small'}")
    prompt = (
        "def f():\n    return {'a': 1}\n"
        "Use {limit} and {config[model]}, keep {undefined_name} and {{literal}}."
    )
    kernel.run(chat_cell(server, prompt, "rate=0,latency=0", "--wait --no-history"))
    sent = literal(kernel, "__import__('ipyllm').last.transcript.messages[-1]['content']")
    assert sent == (
        "def f():\n    return {'a': 1}\nUse 42 and small, keep {undefined_name} and {literal}."
    )


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%chat -p nope\nhi", "unknown provider 'nope'"),
        ("%%chat -p anthropic\nhi", "set ANTHROPIC_API_KEY in the environment the kernel started"),
        ("%%chat --bogus\nhi", "unrecognized arguments: --bogus"),
        ("%%chat --temprature 0.5\nhi", "unknown option --temprature: did you mean --temperature?"),
        ("%%chat --no-histroy\nhi", "unknown option --no-histroy: did you mean --no-history?"),
        ("%%chat --format mardown\nhi", "did you mean --format markdown?"),
        ("%%chat --replay fallbak\nhi", "not 'fallbak' (did you mean 'fallback'?)"),
        (
            "%chat histroy",
            "unknown command 'histroy': did you mean 'history'? "
            "To send a one-word prompt, write it as a cell: %%chat",
        ),
        ("%chat Sesions", "unknown command 'Sesions': did you mean 'sessions'?"),
        ("%%chat\n{limit.nope}", "cannot fill in {limit.nope}: AttributeError"),
        ("%%chat\n   ", "nothing to send"),
    ],
)
def test_errors_before_sending_are_one_clear_line(kernel: Kernel, cell: str, message: str) -> None:
    kernel.run("limit = 42")
    reply, _ = kernel.execute(cell)
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "UsageError"
    assert message in content["evalue"]
    assert "\n" not in content["evalue"]


def test_a_mistyped_command_or_option_sends_nothing_and_a_prompt_still_goes(
    kernel: Kernel, server: ServerThread
) -> None:
    base = f"-p openai --base-url {server.url}/with/rate=0,latency=0/v1 --wait --no-history"
    before = len(server.app.log)
    for line in (f"%chat {base} histroy", f"%chat {base} --temprature 0.5 Hello there"):
        reply, _ = kernel.execute(line)
        assert reply["content"]["ename"] == "UsageError", line
    assert [r for r in server.app.log[before:] if r["event"] == "request"] == []
    # More than one word is a prompt, and so is one word written as a cell.
    kernel.run(f"%chat {base} Explain SSE in one line")
    assert literal(kernel, "__import__('ipyllm').last.text") == ask("Explain SSE in one line")
    kernel.run(f"%%chat {base}\nhistroy")
    assert literal(kernel, "__import__('ipyllm').last.text") == ask("histroy")


def test_the_help_shows_how_replay_is_written(kernel: Kernel) -> None:
    reply = kernel.run("%chat?")
    (page,) = [p for p in reply["content"]["payload"] if p.get("source") == "page"]
    help_text = page["data"]["text/plain"]
    assert "[--replay [fallback]]" in help_text
    assert "--replay <[fallback]>" in help_text
    assert "{True" not in help_text


def test_stop_all_and_history_commands(kernel: Kernel, server: ServerThread) -> None:
    logged = len(server.app.log)
    kernel.run(chat_cell(server, "Slow one", "rate=5", "--session cmds"))
    kernel.run(chat_cell(server, "Slow two", "rate=5", "--session cmds"))
    deadline = time.monotonic() + 10
    while sum(r["event"] == "request" for r in server.app.log[logged:]) < 2:  # both streaming
        assert time.monotonic() < deadline, server.app.log[logged:]
        time.sleep(0.05)
    reply = kernel.run("%chat stop")
    printed = "".join(m["content"]["text"] for m in kernel.outputs_of(reply, "stream"))
    assert "stopped 2 answers" in printed
    # The stopped answers end on the kernel's next turns (their connections close): the
    # history shows them once they have.
    deadline = time.monotonic() + 10
    while True:
        reply = kernel.run("%chat history --session cmds")
        # Shown as Markdown (rendered by the page), with the same text for plain viewers.
        (shown,) = kernel.outputs_of(reply, "display_data")
        data = shown["content"]["data"]
        if data["text/markdown"].count("(stopped)") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert data["text/markdown"].startswith("# Conversation: cmds")
    assert data["text/markdown"].count("(stopped)") == 2
    assert data["text/plain"].count("(stopped)") == 2
    assert not kernel.outputs_of(reply, "stream")


def test_nbclient_saves_the_complete_answers_as_static_outputs(
    server: ServerThread, tmp_path: Path
) -> None:
    cells = [
        "%load_ext ipyllm",
        chat_cell(server, "Headless one", "rate=50,latency=0.1"),
        chat_cell(server, "Headless two", "rate=50,latency=0.1"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # nbclient starts the kernel as papermill and nbconvert do: no JPY_SESSION_NAME.
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    saved = nbformat.read(path, as_version=4)
    first_answer = ask("Headless one")
    second_answer = demo_answer(  # the second turn carries the first as history
        [
            {"role": "user", "content": "Headless one"},
            {"role": "assistant", "content": first_answer},
            {"role": "user", "content": "Headless two"},
        ]
    )
    for cell, answer in zip(saved.cells[1:], [first_answer, second_answer], strict=True):
        (output,) = cell.outputs
        assert output.output_type == "display_data"
        assert answer in output.data["text/plain"]
        assert "application/vnd.jupyter.widget-view+json" not in output.data
        assert output.metadata["ipyllm"]["status"] == "done"
        assert "<script" not in output.data["text/html"]


def test_terminal_ipython_prints_the_answer_as_it_arrives(server: ServerThread) -> None:
    script = (
        "get_ipython().run_line_magic('load_ext', 'ipyllm')\n"
        "get_ipython().run_cell_magic('chat', "
        f"'-p openai --base-url {server.url}/with/rate=20,latency=0/v1', 'Terminal question')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    arrivals: list[tuple[float, str]] = []
    while chunk := process.stdout.read(16):
        arrivals.append((time.monotonic(), chunk))
    assert process.wait(timeout=60) == 0
    printed = "".join(chunk for _, chunk in arrivals)
    assert ask("Terminal question") in printed
    spread = arrivals[-1][0] - arrivals[0][0]
    assert spread > 1.0  # printed over the stream's seconds, not all at the end


def test_the_terminal_command_of_the_readme_prints_the_answer() -> None:
    """README: `ipython --ext=ipyllm -c '%chat Explain SSE in one line'` (the demo model,
    since the tests remove every provider key)."""
    ipython = Path(sys.executable).with_name("ipython")  # this environment's
    done = subprocess.run(
        [str(ipython), "--ext=ipyllm", "-c", "%chat Explain SSE in one line"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ask("Explain SSE in one line") in done.stdout


def test_config_sets_defaults_and_the_line_overrides_them(
    kernel: Kernel, server: ServerThread
) -> None:
    fast = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"
    kernel.run("%config Chat.model = 'demo-reasoning'\n%config Chat.provider = 'demo'")
    try:
        kernel.run(f"%%chat --base-url {fast} --wait --no-history\nThink first.")
        assert literal(kernel, "__import__('ipyllm').last.transcript.model") == "demo-reasoning"
        assert literal(kernel, "bool(__import__('ipyllm').last.transcript.reasoning)") is True
        kernel.run(f"%%chat -m demo --base-url {fast} --wait --no-history\nNo thinking.")
        assert literal(kernel, "__import__('ipyllm').last.transcript.model") == "demo"
    finally:
        kernel.run("%config Chat.model = None\n%config Chat.provider = None")


def test_models_lists_the_providers_models_and_checks_the_key(
    kernel: Kernel, server: ServerThread
) -> None:
    reply = kernel.run(f"%chat models -p openai --base-url {server.url}/v1")
    printed = "".join(m["content"]["text"] for m in kernel.outputs_of(reply, "stream"))
    assert "demo" in printed and "demo-reasoning" in printed
    reply, _ = kernel.execute(f"%chat models -p openai --base-url {server.url}/with/status=401/v1")
    assert reply["content"]["ename"] == "UsageError"
    assert "refused the request (HTTP 401" in reply["content"]["evalue"]


def test_history_trimmed_to_the_context_window_says_so(
    kernel: Kernel, server: ServerThread
) -> None:
    session = f"trim-{kernel.manager.kernel_name}"
    kernel.run("%config Chat.context_window = 1200")
    try:
        for n in range(4):
            reply = kernel.run(
                chat_cell(
                    server, f"Question {n}", "rate=0,latency=0", f"--session {session} --wait"
                )
            )
        (display_id,) = kernel.display_ids(reply)
        final = kernel.final_display(display_id)["content"]["data"]["text/html"]
        assert "oldest turns of session" in final and "context window" in final
        sent = literal(kernel, "__import__('ipyllm').last.transcript.messages")
        assert isinstance(sent, list) and len(sent) < 7  # not every earlier turn was sent
    finally:
        kernel.run("%config Chat.context_window = None")


def test_export_writes_the_session(kernel: Kernel, server: ServerThread, tmp_path: Path) -> None:
    session = f"export-{kernel.manager.kernel_name}"
    kernel.run(chat_cell(server, "Keep this", "rate=0,latency=0", f"--session {session} --wait"))
    for name in ("turns.json", "turns.md"):
        kernel.run(f"%chat export {tmp_path / name} --session {session}")
    exported = json.loads((tmp_path / "turns.json").read_text())
    assert exported["turns"][0]["prompt"] == "Keep this"
    assert exported["turns"][0]["answer"] == ask("Keep this")
    assert "Keep this" in (tmp_path / "turns.md").read_text()


def test_an_interrupt_stops_a_waiting_cell_and_keeps_the_partial_answer(
    kernel: Kernel, server: ServerThread
) -> None:
    prompt = f"Interrupt me ({kernel.manager.kernel_name})"
    request = kernel.client.execute(
        chat_cell(server, prompt, "rate=10,latency=0", "--wait --no-history")
    )
    time.sleep(1.5)
    interrupted = time.time()
    kernel.manager.interrupt_kernel()
    gone = server.app.wait_for(
        lambda r: r["event"] == "disconnect" and r["time"] >= interrupted - 0.05, timeout=5
    )
    assert gone is not None
    reply = kernel.client.get_shell_msg(timeout=10)
    while reply["parent_header"].get("msg_id") != request:
        reply = kernel.client.get_shell_msg(timeout=10)
    assert reply["content"]["status"] == "ok"
    partial = literal(kernel, "__import__('ipyllm').last.text")
    assert isinstance(partial, str) and partial and ask(prompt).startswith(partial)
    assert literal(kernel, "__import__('ipyllm').last.transcript.status") == "stopped"


def test_every_turn_is_logged_and_searchable(
    kernel: Kernel, server: ServerThread, tmp_path: Path
) -> None:
    marker = f"logcheck{kernel.manager.kernel_name.replace('-', '')}"
    kernel.run(chat_cell(server, f"{marker} fine", "rate=0,latency=0", "--wait --no-history"))
    kernel.execute(chat_cell(server, f"{marker} broken", "status=500", "--wait --no-history"))
    reply = kernel.run(f"%chat log {marker}")
    printed = "".join(m["content"]["text"] for m in kernel.outputs_of(reply, "stream"))
    assert "2 most recent turns" in printed
    assert f"{marker} fine" in printed and "[error]" in printed
    kernel.run(f"%chat log-export {tmp_path / 'log.json'} {marker}")
    logged = json.loads((tmp_path / "log.json").read_text())
    assert [t["status"] for t in logged] == ["done", "error"]
    assert logged[0]["answer"] == ask(f"{marker} fine")
    assert "HTTP 500" in logged[1]["error"]


def test_record_then_replay_per_cell(kernel: Kernel, server: ServerThread) -> None:
    prompt = f"Replay me ({kernel.manager.kernel_name})"
    kernel.run(chat_cell(server, prompt, "rate=0,latency=0", "--record --wait --no-history"))
    live = literal(kernel, "__import__('ipyllm').last.text")
    # Replayed from the store: a live request to this URL would fail with HTTP 500.
    kernel.run(chat_cell(server, prompt, "status=500", "--replay --wait --no-history"))
    assert literal(kernel, "__import__('ipyllm').last.text") == live
    reply, _ = kernel.execute(chat_cell(server, "Never recorded", "", "--replay --wait"))
    assert reply["content"]["ename"] == "UsageError"
    assert "no recording of this request" in reply["content"]["evalue"]


def test_compare_cell_streams_models_side_by_side_and_one_turn_enters_history(
    kernel: Kernel, server: ServerThread
) -> None:
    kernel.run("%chat reset")
    reply = kernel.run(chat_cell(server, "Compare us", "rate=200", "-m demo -m demo-b -o both"))
    (live_id,) = kernel.display_ids(reply)  # one widget: the columns
    final = kernel.final_display(live_id)["content"]
    answers = final["metadata"]["ipyllm"]["answers"]
    assert [entry["status"] for entry in answers] == ["done", "done"]
    assert final["data"]["text/plain"].count(ask("Compare us")) == 2
    assert literal(kernel, "[t.model for t in both.transcripts]") == ["demo", "demo-b"]
    history = literal(
        kernel, "len(get_ipython().find_magic('chat').__self__.sessions['default'].turns)"
    )
    assert history == 1


def test_over_sends_a_cell_per_row_and_into_writes_the_answers(
    server: ServerThread, tmp_path: Path
) -> None:
    cells = [
        "%load_ext ipyllm",
        "import pandas as pd\ncities = pd.DataFrame({'city': ['Paris', 'Lima', 'Oslo']})",
        chat_cell(server, "Tell me about {city}", "rate=0,latency=0", "--over cities --into answer")
        + "",
        "list(cities['answer'])",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()  # headless: waits
    summary = notebook.cells[2].outputs
    assert len(summary) == 1 and summary[0].output_type == "display_data"
    assert "3 done" in summary[0].data["text/plain"]
    assert summary[0].metadata["ipyllm"]["map"]["done"] == 3
    assert "application/vnd.jupyter.widget-view+json" not in summary[0].data
    answers = ast.literal_eval(notebook.cells[3].outputs[0].data["text/plain"])
    assert answers == [ask(f"Tell me about {city}") for city in ("Paris", "Lima", "Oslo")]


def test_chat_running_shows_the_answer_again_with_a_fallback_its_end_reaches(
    kernel: Kernel, server: ServerThread
) -> None:
    """After a page reload the page knows only the display ids of the cells it runs itself:
    `%chat running` shows each running answer again, its live view and its fallback under
    the answer's own display ids, so the final copy reaches that cell in the reloaded page
    (and a save there keeps it)."""
    prompt = f"Show me again ({kernel.manager.kernel_name})"
    reply, _ = kernel.execute(chat_cell(server, prompt, "rate=40,latency=0", "--no-history"))
    (live_id,) = kernel.display_ids(reply)
    again, _ = kernel.execute("%chat running")
    shown = {
        m["content"]["transient"]["display_id"]: m["content"]
        for m in kernel.outputs_of(again, "display_data")
        if m["content"].get("transient", {}).get("display_id")
    }
    answer = live_id.removeprefix("ipyllm-live-")
    printed = "".join(m["content"].get("text", "") for m in kernel.outputs_of(again, "stream"))
    assert set(shown) == {live_id, f"ipyllm-static-{answer}"}, (printed, shown)
    assert "application/vnd.jupyter.widget-view+json" in shown[live_id]["data"]
    fallback = shown[f"ipyllm-static-{answer}"]
    assert fallback["metadata"]["ipyllm_fallback"] == answer
    assert fallback["metadata"]["ipyllm"]["status"] in ("pending", "streaming")
    final = kernel.final_display(live_id)["content"]
    assert final["metadata"]["ipyllm"]["status"] == "done"
    assert ask(prompt) in final["data"]["text/plain"]
