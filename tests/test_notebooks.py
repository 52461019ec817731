"""Every notebook in notebooks/ runs headless (as nbconvert and papermill run it), offline.

The kernel gets no JPY_SESSION_NAME, so %%chat waits for each answer and the saved
outputs are the complete static copies. No API key is set (conftest removes them) and
every request goes to the in-process demo model or to a teaching server on 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
pytestmark = pytest.mark.timeout(300)


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    ).execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode, source_start: str) -> list[dict]:
    (cell,) = [
        c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start)
    ]
    return cell.outputs


def text_of(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)


def chat_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.source.startswith("%%chat")
        for output in cell.outputs
    ]


def assert_static_and_safe(output: dict) -> None:
    assert output["output_type"] == "display_data"
    assert {"text/html", "text/markdown", "text/plain"} <= set(output["data"])
    assert "application/vnd.jupyter.widget-view+json" not in output["data"]
    assert "<script" not in output["data"]["text/html"]


def test_quickstart() -> None:
    notebook = execute("quickstart.ipynb")
    answers = chat_outputs(notebook)
    assert len(answers) == 5
    for output in answers:
        assert_static_and_safe(output)
    statuses = [o["metadata"]["ipyllm"]["status"] for o in answers]
    assert statuses == ["done"] * 5
    assert "Turn 2" in answers[1]["data"]["text/plain"]  # the follow-up carried the history
    assert answers[2]["metadata"]["ipyllm"]["finish_reason"] == "length"
    assert "cut off by the max tokens limit" in answers[2]["data"]["text/plain"]
    assert "length - " in text_of(outputs_of(notebook, "transcript = await answer"))
    assert "done" in text_of(outputs_of(notebook, "await first"))
    assert "binary search" in answers[4]["data"]["text/plain"]  # {topic} was filled in
    (history,) = outputs_of(notebook, "%chat history")
    assert "## Turn 2" in history["data"]["text/markdown"]  # rendered as Markdown


def test_teaching_streaming() -> None:
    notebook = execute("teaching-streaming.ipynb")
    # The bytes: the framing (data:, the blank line written out) and each delta's content.
    wire = text_of(outputs_of(notebook, "import json"))
    assert "200 text/event-stream" in wire
    assert 'data: {… "delta": {"content": "##"} …}\\n\\n' in wire
    assert '"finish_reason": "length"' in wire and "data: [DONE]\\n\\n" in wire
    assert "the second piece, whole: b'data: {" in wire  # one piece as it really is
    assert all(len(line) < 200 for line in wire.splitlines()[:-1])  # short, for a class
    splits = text_of(outputs_of(notebook, "from ipyllm.sse import"))
    decoded = {line.split("->")[1] for line in splits.strip().splitlines()}
    assert len(decoded) == 1  # the same events for every split of the bytes
    answers = chat_outputs(notebook)
    assert len(answers) == 5
    for output in answers:
        assert_static_and_safe(output)
    openai_events = answers[0]["data"]["text/html"]
    assert "Wire events" in openai_events and "[DONE]" in openai_events
    assert "<details class='ipyllm-wire' open>" in openai_events  # open, as it was live
    assert answers[0]["data"]["text/plain"].split("\n\n")[1] == "## Streaming"  # on topic
    # The three formats side by side, each with its own events.
    (formats,) = outputs_of(notebook, "formats = ipyllm.compare(")
    assert_static_and_safe(formats)
    side_by_side = formats["data"]["text/html"]
    assert "[DONE]" in side_by_side
    assert "message_start" in side_by_side and "content_block_delta" in side_by_side
    assert "&quot;done&quot;:true" in side_by_side
    # Token arrivals: a plot, and the stall and the buffering proxy in numbers.
    plot = outputs_of(notebook, "import asyncio")
    assert any("image/png" in o.get("data", {}) for o in plot)
    fields = r"first token +([\d.]+) s +longest gap +([\d.]+) s +last token +([\d.]+) s"
    steady, stalled, buffered = (
        [float(x) for x in re.findall(fields, line)[0]]
        for line in text_of(plot).strip().splitlines()
    )
    assert steady[0] >= 0.25 and steady[1] < 1.0  # first token after the latency, no stall
    assert stalled[1] >= 1.4  # the stall is the longest gap
    assert buffered[0] >= 2.4 and buffered[2] - buffered[0] < 0.5  # late, then all at once
    assert "retries: 1 - status: done" in text_of(outputs_of(notebook, "transcript = await"))
    retried, unauthorized, mid_stream, dropped = (a["data"]["text/plain"] for a in answers[1:5])
    assert "1 retry" in retried.split("\n")[0] and "could not reach" not in retried
    assert "HTTP 401" in unauthorized and "ANTHROPIC_API_KEY" in unauthorized
    assert "in the environment the kernel started from" in unauthorized
    assert "mid-stream" in mid_stream and "failed" in mid_stream
    assert "closed before the answer was complete" in dropped or re.search(
        r"ended (before the answer was complete|in the middle of an event)", dropped
    )
    assert "peer closed" not in dropped  # said in ipyllm's words, not httpx's
    stop = text_of(outputs_of(notebook, "answer = ipyllm.stream("))
    assert "- stopped" in stop and "disconnect" in stop
    timing = text_of(outputs_of(notebook, "answer = await ipyllm.achat("))
    first, whole = (float(x) for x in re.findall(r"after\s+([\d.]+) s", timing))
    assert first < whole / 5  # streaming shows text long before the answer is complete


def test_report_example_and_its_html_export() -> None:
    notebook = execute("report-example.ipynb")
    commentary, findings = (
        next(o for o in cell.outputs if o["output_type"] == "display_data")
        for cell in notebook.cells
        if cell.cell_type == "code" and "ChatView(" in cell.source
    )
    for output in (commentary, findings):
        assert_static_and_safe(output)
        assert output["metadata"]["ipyllm"]["status"] == "done"
    assert "<table>" in findings["data"]["text/html"] and "+13.3%" in findings["data"]["text/html"]
    assert "<strong>south</strong>" in findings["data"]["text/html"]  # +15.8%, the best
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert "Growth by region" in html and "Mean and variance" in html
    assert "onerror" not in html
