"""The demo model answers on the topic a question names, and stays deterministic."""

from __future__ import annotations

import pytest

from ipyllm.server import demo_answer, demo_reasoning


def heading(question: str) -> str:
    return demo_answer([{"role": "user", "content": question}]).splitlines()[0]


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Explain streaming to a class.", "Streaming"),
        ("What is streaming?", "Streaming"),
        ("Which events does the server send?", "Streaming"),
        ("How are tokens counted?", "Streaming"),
        ("Explain binary search to a beginner.", "Binary search"),
        ("Write the Fibonacci numbers up to 100", "Fibonacci numbers"),
        ("What is the variance of a sample?", "Mean and variance"),
        ("Show me word frequencies in a text", "Word frequencies"),
        # The most keywords win: two of binary search against one of streaming.
        ("Binary search over a sorted stream", "Binary search"),
    ],
)
def test_a_question_that_names_a_topic_gets_it(question: str, topic: str) -> None:
    assert heading(question) == f"## {topic}"
    reasoning = demo_reasoning([{"role": "user", "content": question}])
    assert f"I will explain {topic.lower()}" in reasoning


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # Not a keyword in sight: the topic comes from a hash over the first four topics,
        # exactly as before the streaming topic existed, so earlier answers do not change.
        ("Tell me a long story.", "Mean and variance"),
        ("Try again, please.", "Fibonacci numbers"),
        ("Hello?", "Binary search"),
        ("Why is the sky blue?", "Fibonacci numbers"),
        # "mean" in "what does it mean" names no topic: the hash decides.
        ("What does it mean to stop?", "Binary search"),
    ],
)
def test_other_questions_keep_their_hashed_topic(question: str, topic: str) -> None:
    assert heading(question) == f"## {topic}"


def test_only_a_question_that_names_it_gets_the_streaming_topic() -> None:
    headings = {heading(f"Tell me about thing {n}.") for n in range(40)}
    assert headings == {"## Fibonacci numbers", "## Binary search", "## Word frequencies",
                        "## Mean and variance"}  # fmt: skip


def test_keyword_choice_is_deterministic_and_keeps_the_answer_shape() -> None:
    question = [{"role": "user", "content": "Explain streaming to a class."}]
    answer = demo_answer(question)
    assert answer == demo_answer(question)  # a pure function of the messages
    assert "```python\n" in answer and "\n$$\n" in answer and "|:---|---:|:---:|" in answer
    assert 'You asked: "Explain streaming to a class."' in answer
    assert "Fibonacci" not in answer
