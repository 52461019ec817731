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
    assert "length - " in text_of(outputs_of(notebook, "print(answer"))
    assert "binary search" in answers[4]["data"]["text/plain"]  # {topic} was filled in
    (history,) = outputs_of(notebook, "%chat history")
    assert "## Turn 2" in history["data"]["text/markdown"]  # rendered as Markdown


def test_teaching_streaming() -> None:
    notebook = execute("teaching-streaming.ipynb")
    wire = text_of(outputs_of(notebook, "request = "))
    assert "200 text/event-stream" in wire and "data: {" in wire
    splits = text_of(outputs_of(notebook, "from ipyllm.sse import"))
    decoded = {line.split("->")[1] for line in splits.strip().splitlines()}
    assert len(decoded) == 1  # the same events for every split of the bytes
    answers = chat_outputs(notebook)
    for output in answers:
        assert_static_and_safe(output)
    openai_events, anthropic_events, ollama_events = (a["data"]["text/html"] for a in answers[:3])
    assert "Wire events" in openai_events and "[DONE]" in openai_events
    assert "message_start" in anthropic_events and "content_block_delta" in anthropic_events
    assert "&quot;done&quot;:true" in ollama_events
    assert "retries: 1 - status: done" in text_of(outputs_of(notebook, "print('retries:'"))
    unauthorized, mid_stream, dropped = (a["data"]["text/plain"] for a in answers[4:7])
    assert "HTTP 401" in unauthorized and "ANTHROPIC_API_KEY" in unauthorized
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
