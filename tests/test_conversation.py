"""Sessions, history trimming and {name} interpolation, without a kernel."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ipyllm import InterpolationError, Transcript
from ipyllm.conversation import (
    Session,
    Turn,
    context_window,
    estimate_tokens,
    history_messages,
    interpolate,
    prompt_budget,
)
from ipyllm.events import TextDelta


def turn(prompt: str, answer: str, status: str = "done", cell_id: str | None = None) -> Turn:
    transcript = Transcript(provider="demo", model="demo")
    transcript.start()
    transcript.apply(TextDelta(answer))
    transcript.end(status)  # type: ignore[arg-type]
    return Turn(prompt, transcript, cell_id)


# -- interpolation -----------------------------------------------------------------------

NAMESPACE = {
    "limit": 42,
    "config": {"model": "small", 3: "three"},
    "items": ["a", "b"],
    "obj": SimpleNamespace(name="Ada", inner=SimpleNamespace(value=7)),
}


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        ("{limit}", "42"),
        ("{obj.name} {obj.inner.value}", "Ada 7"),
        ("{config[model]} {config['model']} {config[3]} {items[-1]}", "small small three b"),
        ("{{limit}} and {{ {limit} }}", "{limit} and { 42 }"),
        ("{missing} {missing.attr} {}", "{missing} {missing.attr} {}"),
        (
            "def f():\n    return {'a': 1, \"b\": {limit}}",
            "def f():\n    return {'a': 1, \"b\": 42}",
        ),
        ("f'{limit:>5}' {limit!r} {limit + 1}", "f'{limit:>5}' {limit!r} {limit + 1}"),
        ('json: {"key": [1, 2]}', 'json: {"key": [1, 2]}'),
    ],
)
def test_only_placeholders_naming_variables_are_filled_in(prompt: str, sent: str) -> None:
    assert interpolate(prompt, NAMESPACE) == sent


@pytest.mark.parametrize("prompt", ["{obj.nope}", "{items[5]}", "{config[other]}", "{limit[0]}"])
def test_a_variable_that_fails_is_a_clear_error(prompt: str) -> None:
    with pytest.raises(InterpolationError, match=r"cannot fill in \{.*: \w+Error"):
        interpolate(prompt, NAMESPACE)


def test_interpolation_never_evaluates_code() -> None:
    calls = []
    namespace = {"obj": SimpleNamespace(run=lambda: calls.append(1))}
    assert interpolate("{obj.run()} {__import__('os')}", namespace) == (
        "{obj.run()} {__import__('os')}"
    )
    assert calls == []


# -- sessions -----------------------------------------------------------------------------


def test_a_rerun_cell_takes_its_turns_place() -> None:
    session = Session("s")
    for cell, prompt in [("c1", "one"), ("c2", "two"), ("c3", "three")]:
        session.put(session.position_for(cell, prompt), turn(prompt, prompt.upper(), cell_id=cell))
    position = session.position_for("c2", "two, again")
    assert position == 1
    session.put(position, turn("two, again", "TWO AGAIN", cell_id="c2"))
    assert [t.prompt for t in session.turns] == ["one", "two, again", "three"]


def test_without_cell_ids_a_repeated_prompt_is_a_rerun() -> None:
    session = Session("s")
    session.put(session.position_for(None, "same"), turn("same", "A"))
    session.put(session.position_for(None, "same"), turn("same", "B"))
    session.put(session.position_for(None, "other"), turn("other", "C"))
    assert [t.transcript.text for t in session.turns] == ["B", "C"]


def test_history_keeps_what_was_shown_and_skips_unfinished_failed_or_empty_turns() -> None:
    """The rule: complete answers as they are, a stopped one marked as stopped, a failed
    one (even with text) and an empty one left out with their prompts."""
    streaming = turn("in flight", "partial")
    streaming.transcript.status = "streaming"
    earlier = [
        turn("q1", "a1"),
        turn("q2", "half an ans ", status="stopped"),
        turn("q3", "", status="error"),
        turn("q4", "the start of an answer that broke", status="error"),
        turn("q5", "", status="stopped"),
        streaming,
    ]
    messages, dropped = history_messages(earlier, "Be brief.", "q6", budget=10_000)
    assert dropped == 0
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "half an ans\n\n[stopped by the user]"},
        {"role": "user", "content": "q6"},
    ]
    # Roles alternate, as Anthropic requires: no prompt is left without its answer.
    roles = [m["role"] for m in messages[1:]]
    assert roles == ["user", "assistant"] * 2 + ["user"]


def test_history_is_trimmed_oldest_first_keeping_the_system_prompt() -> None:
    earlier = [turn(f"question {n}", "x" * 400) for n in range(10)]
    per_turn = estimate_tokens("question 0") + estimate_tokens("x" * 400)
    budget = estimate_tokens("Be brief.") + estimate_tokens("now") + 3 * per_turn
    messages, dropped = history_messages(earlier, "Be brief.", "now", budget=budget)
    assert dropped == 7
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        "question 7",
        "question 8",
        "question 9",
        "now",
    ]


def test_context_windows_and_budgets() -> None:
    assert context_window("gpt-4o-mini") == 128_000
    assert context_window("openai/gpt-4o") == 128_000  # OpenRouter names
    assert context_window("claude-sonnet-4-5") == 200_000
    assert context_window("some-local-model") == 8_000
    assert prompt_budget("demo", None, None) == 8_000 - 1_024
    assert prompt_budget("demo", 500, None) == 7_500
    assert prompt_budget("anything", None, 32_000) == 32_000 - 1_024


def test_exports_mark_stopped_and_failed_turns() -> None:
    session = Session("notes")
    session.put(0, turn("q1", "a1"))
    session.put(1, turn("q2", "partial", status="stopped"))
    markdown = session.to_markdown()
    assert "## Turn 2 (stopped)" in markdown and "partial" in markdown
    exported = json.loads(session.to_json())
    assert exported["session"] == "notes"
    assert [t["status"] for t in exported["turns"]] == ["done", "stopped"]
    assert exported["turns"][1]["answer"] == "partial"
