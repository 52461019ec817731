"""Values in prompts: a DataFrame or Series becomes a bounded Markdown table with a note of
what was left out; other values keep str(); hostile cells stay inert in the view."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ipyllm
from ipyllm import ChatView
from ipyllm.conversation import fill, markdown_table
from ipyllm.options import resolve_options
from ipyllm.server import ServerThread

from .safety import PAYLOADS, violations
from .widgets import Frontend

pd = pytest.importorskip("pandas")

FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"


@pytest.fixture
def kept() -> Iterator[ServerThread]:
    with ServerThread(token_rate=0, first_token_latency=0, keep_bodies=True) as running:
        yield running


def big_frame(rows: int = 10_000) -> object:
    return pd.DataFrame(
        {
            "id": range(rows),
            "city": [f"city-{n}" for n in range(rows)],
            "x": [n / 3 for n in range(rows)],
        }
    )


def test_a_ten_thousand_row_frame_is_sent_as_a_bounded_table_with_a_note(
    kept: ServerThread,
) -> None:
    frame = big_frame()
    result = ipyllm.map(
        "Summarise this table:\n\n{df}",
        ["only row"],
        namespace={"df": frame},
        provider="openai",
        base_url=f"{kept.url}/v1",
        api_key="sk-test-frames",
    )
    assert [t.status for t in result.transcripts if t is not None] == ["done"]
    sent = kept.app.last_body["messages"][-1]["content"]
    assert len(sent) < 4_000 + 200  # the character budget, and a little text around it
    lines = [line for line in sent.splitlines() if line.startswith("|")]
    assert lines[0] == "|  | id | city | x |" and lines[1] == "|---|---|---|---|"
    assert lines[2] == "| 0 | 0 | city-0 | 0 |"
    assert "| … | … | … | … |" in lines
    assert lines[-1] == "| 9999 | 9999 | city-9999 | 3333 |"
    assert len(lines) == 2 + 20 + 1  # header, the default 20 rows (10 + 10), the gap
    assert sent.endswith(
        "(A table of 10,000 rows × 3 columns; rows 11 to 9,990 (9,980 rows) are left out)"
    )
    assert "city-5000" not in sent


def test_the_budgets_are_options_and_the_character_budget_wins() -> None:
    options = resolve_options()
    assert (options.table_rows, options.table_chars) == (20, 4_000)
    frame = big_frame(100)
    six = fill("{df}", {"df": frame}, table_rows=6).text
    assert six.count("\n| ") == 6 + 1  # six rows and the gap (not the header, first)
    small = fill("{df}", {"df": frame}, table_rows=50, table_chars=300).text
    table = small.rpartition("\n\n")[0]
    assert len(table) <= 300 and small.endswith("(94 rows) are left out)")
    wide = pd.DataFrame({f"column_{n}": ["x" * 50] for n in range(40)})
    narrow = markdown_table(wide, rows=20, chars=500)
    assert len(narrow.rpartition("\n\n")[0]) <= 500
    assert narrow.endswith("(A table of 1 row × 40 columns; the last 33 columns are left out)")


def test_series_small_frames_and_other_values() -> None:
    series = pd.Series([1.5, 2.25], index=["a", "b"], name="score")
    assert fill("{s}", {"s": series}).text == (
        "|  | score |\n|---|---|\n| a | 1.5 |\n| b | 2.25 |\n\n(A table of 2 rows × 1 column)"
    )
    frame = pd.DataFrame({"text": ["a | b", "two\nlines"]})
    shown = fill("{f}", {"f": frame}).text
    assert "| 0 | a \\| b |" in shown and "| 1 | two lines |" in shown
    assert fill("{n} {items}", {"n": 3, "items": [1, 2]}).text == "3 [1, 2]"  # str(), as before
    assert fill("{f[text]}", {"f": frame}).text.startswith("|  | text |")  # a column: a Series


@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_hostile_cells_stay_inert_in_the_view(frontend: Frontend, name: str) -> None:
    payload = PAYLOADS[name]
    frame = pd.DataFrame({payload[:60]: [payload, payload[::-1]]})
    filled = fill("{df} {df}", {"df": frame})
    # The demo answer quotes the prompt: the table's text comes back in the answer.
    view = ChatView()
    words = "words=400,rate=0,latency=0"
    transcript = await view.stream(
        ipyllm.stream(
            filled.text, provider="demo", base_url=f"http://demo.ipyllm.invalid/with/{words}/v1"
        )
    )
    assert transcript.status == "done"
    for value in frontend.body_values_sent(view):
        assert not violations(value), (name, value)
