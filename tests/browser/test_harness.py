"""The browser harness proven on plain cells and core ipywidgets, in JupyterLab 4 and
Notebook 7: outputs, a widget growing in place from a background task, a Stop button, the
hostile-output sentinel, save and reopen, screenshots."""

from __future__ import annotations

import html
import sys
from itertools import pairwise

import pytest

from tests.browser.harness import OpenNotebook, OutputSample, page_report, wait_until

# browser: skipped or failed without a browser (conftest.py). The Playwright fixtures live on
# the session loop, so the tests must run on it too.
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# An ipywidgets.HTML that a task on the kernel's loop grows by a word every 0.1 s. The cell
# returns at once; the global keeps a strong reference (asyncio keeps only weak ones).
GROWING_WIDGET = """
import asyncio
import ipywidgets as widgets
from IPython.display import display

words = widgets.HTML(value="")

async def grow(widget, count, delay=0.1):
    try:
        for i in range(count):
            widget.value += f"w{i} "
            await asyncio.sleep(delay)
        widget.value += "done"
    except asyncio.CancelledError:
        widget.value += "stopped"
        raise
"""
START_FOR_3_S = "growing = asyncio.get_running_loop().create_task(grow(words, 30))"
STOPPABLE = """
stop = widgets.Button(description="Stop")
stop.on_click(lambda _button: growing.cancel())
display(widgets.VBox([stop, words]))
growing = asyncio.get_running_loop().create_task(grow(words, 100))
"""

XSS_PAYLOAD = '<img src=x onerror="window.__ipyllm_xss++">'
FOREIGN_IMAGE = "http://example.invalid/x.png"
FOREIGN_IMAGE_HTML = f'<img src="{FOREIGN_IMAGE}">'


def assert_grows_in_place(samples: list[OutputSample]) -> None:
    texts = [sample.text for sample in samples]
    for earlier, later in pairwise(texts):
        assert later.startswith(earlier) and len(later) > len(earlier), texts
    assert {sample.output_count for sample in samples} == {1}, samples


async def test_runs_a_cell_in_this_interpreter(open_notebook: OpenNotebook) -> None:
    notebook = await open_notebook(["1+1", "import sys; sys.executable"])
    await notebook.run_cell(0)
    assert await notebook.output_text(0) == "2"
    await notebook.run_cell(1)
    assert await notebook.output_text(1) == repr(sys.executable)
    shot = await notebook.screenshot("one-plus-one")
    assert shot.read_bytes().startswith(b"\x89PNG")


async def test_background_task_grows_widget_while_kernel_idle(
    open_notebook: OpenNotebook,
) -> None:
    notebook = await open_notebook([GROWING_WIDGET + "display(words)\n" + START_FOR_3_S, "1+1"])
    await notebook.run_cell(0)

    assert_grows_in_place(await notebook.sample_output_texts(0, count=4, interval=0.05))
    assert await notebook.kernel_status() == "idle"

    await notebook.run_cell(1)
    assert await notebook.output_text(1) == "2"
    assert "done" not in await notebook.output_text(0), "the task ended before 1+1 answered"
    assert await notebook.outputs(0).count() == 1
    shot = await notebook.screenshot("growing-widget", cell_index=0)
    assert shot.read_bytes().startswith(b"\x89PNG")


async def test_stop_button_cancels_background_task(open_notebook: OpenNotebook) -> None:
    notebook = await open_notebook([GROWING_WIDGET + STOPPABLE, "growing.cancelled()"])
    await notebook.run_cell(0)
    assert_grows_in_place(await notebook.sample_output_texts(0, count=3, interval=0.05))

    await notebook.click_output_button(0, "Stop")
    await notebook.wait_for_output_text(0, "stopped")
    stopped_text = await notebook.output_text(0)
    assert await notebook.kernel_status() == "idle"

    # Running a cell takes longer than one 0.1 s step of the task: had it gone on, the text
    # would have grown by now.
    await notebook.run_cell(1)
    assert await notebook.output_text(1) == "True"
    assert await notebook.output_text(0) == stopped_text


async def test_sentinel_sees_script_and_foreign_requests(open_notebook: OpenNotebook) -> None:
    notebook = await open_notebook(
        [
            f"from IPython.display import HTML\nHTML({html.escape(XSS_PAYLOAD)!r})",
            f"HTML({XSS_PAYLOAD!r})",
            f"HTML({FOREIGN_IMAGE_HTML!r})",
        ]
    )

    async def script_ran() -> bool:
        return (await page_report(notebook.page))["xss"] == 1

    async def foreign_image_blocked() -> bool:
        return FOREIGN_IMAGE in (await page_report(notebook.page))["foreign_requests"]  # type: ignore[operator]

    # The escaped payload first: by the time the raw one has run, it had its chance too.
    await notebook.run_cell(0)
    assert await notebook.output_text(0) == XSS_PAYLOAD  # shown as text, not as an element
    await notebook.run_cell(1)
    # Live outputs are trusted, so the raw payload runs: this proves the sentinel counts.
    await wait_until(script_ran, 10_000, "onerror never ran")
    await notebook.run_cell(2)
    await wait_until(foreign_image_blocked, 10_000, "the foreign image was never requested")
    assert await page_report(notebook.page) == {
        "xss": 1,
        "dialogs": [],
        "foreign_requests": [FOREIGN_IMAGE],
    }


async def test_saved_output_survives_reopen(open_notebook: OpenNotebook) -> None:
    notebook = await open_notebook(
        ["display({'text/html': '<b>kept</b>', 'text/plain': 'kept'}, raw=True)"]
    )
    await notebook.run_cell(0)
    saved = await notebook.save()
    assert saved.cells[0].outputs[0]["data"]["text/html"] == "<b>kept</b>"

    await notebook.reopen()
    assert await notebook.output_html(0) == "<b>kept</b>"
    assert await notebook.output_text(0) == "kept"
