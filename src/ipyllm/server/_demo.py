"""The embedded demo model: deterministic Markdown answers, no network, no randomness.

A classroom needs answers that exercise every rendering path (headings, nested lists,
code, tables, math), that change with the prompt, and that show the conversation
history really being sent. Everything here is a pure function of the messages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEMO_MODELS = ["demo", "demo-reasoning"]

# Roughly five times the default answer when the prompt asks for a long one.
_LONG_FACTOR = 5
_LONG_REQUEST = re.compile(r"\b(long|longer|lengthy|detailed)\b", re.IGNORECASE)
_QUOTE_CHARS = 80

# A token is a newline, a word piece with its leading space, a short run of punctuation
# with its leading space, or a run of other whitespace (indentation). The four
# alternatives cover every character, so the pieces always concatenate back to the text.
_TOKEN = re.compile(r"\n| ?\w{1,10}| ?[^\w\s]{1,3}|[^\S\n]+")


@dataclass(frozen=True)
class _Topic:
    title: str
    idea: str
    points: tuple[tuple[str, tuple[str, ...]], ...]
    language: str
    code: str
    table: tuple[tuple[str, str, str], ...]
    inline_math: str
    display_math: str


_TOPICS = (
    _Topic(
        title="Fibonacci numbers",
        idea="Each number is the sum of the two before it, so a loop that keeps two "
        "running values is all we need.",
        points=(
            ("Definition", ("$F_0 = 0$ and $F_1 = 1$", "every later term adds the previous two")),
            ("Cost", ("the loop runs $n$ times", "memory stays constant")),
        ),
        language="python",
        code='def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n'
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        table=(("0", "0", "base case"), ("1", "1", "base case"), ("10", "55", "loop")),
        inline_math=r"$F_n = F_{n-1} + F_{n-2}$",
        display_math=r"F_n = \frac{\varphi^n - \psi^n}{\sqrt{5}}",
    ),
    _Topic(
        title="Binary search",
        idea="Halving a sorted range at every step finds an item, or its place, "
        "in very few comparisons.",
        points=(
            ("Invariant", ("the target is always inside `[lo, hi)`", "the range shrinks")),
            ("Cost", ("at most $\\lceil \\log_2 n \\rceil$ steps", "the input must be sorted")),
        ),
        language="javascript",
        code="function search(xs, target) {\n  let lo = 0, hi = xs.length;\n"
        "  while (lo < hi) {\n    const mid = (lo + hi) >> 1;\n"
        "    if (xs[mid] < target) lo = mid + 1; else hi = mid;\n  }\n  return lo;\n}\n",
        table=(("8", "3", "tiny"), ("1024", "10", "small"), ("10^6", "20", "large")),
        inline_math=r"$T(n) = T(n/2) + O(1)$",
        display_math=r"T(n) = O(\log n)",
    ),
    _Topic(
        title="Word frequencies",
        idea="Counting words is a dictionary update per word; sorting the counts shows "
        "what a text talks about.",
        points=(
            ("Steps", ("split the text into words", "count each word in a dictionary")),
            ("Cost", ("one pass over $n$ words", "sorting adds $O(k \\log k)$")),
        ),
        language="python",
        code="from collections import Counter\n\n\ndef top_words(text: str, k: int = 3):\n"
        "    words = text.lower().split()\n    return Counter(words).most_common(k)\n",
        table=(("the", "42", "stop word"), ("model", "17", "topic"), ("token", "9", "topic")),
        inline_math=r"$f(w) = \frac{c(w)}{N}$",
        display_math=r"H = -\sum_{w} f(w) \log_2 f(w)",
    ),
    _Topic(
        title="Mean and variance",
        idea="Two numbers summarise a sample: where it sits and how far it spreads.",
        points=(
            ("Mean", ("add the values", "divide by their count $n$")),
            ("Variance", ("average the squared distance to the mean", "take a root for $\\sigma$")),
        ),
        language="rust",
        code="fn mean_var(xs: &[f64]) -> (f64, f64) {\n    let n = xs.len() as f64;\n"
        "    let mean = xs.iter().sum::<f64>() / n;\n"
        "    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;\n"
        "    (mean, var)\n}\n",
        table=(("1, 2, 3", "2", "0.67"), ("2, 2, 2", "2", "0"), ("0, 10", "5", "25")),
        inline_math=r"$\bar{x} = \frac{1}{n}\sum_i x_i$",
        display_math=r"\sigma^2 = \frac{1}{n} \sum_{i=1}^{n} (x_i - \bar{x})^2",
    ),
    _Topic(
        title="Streaming",
        idea="The server sends each token as soon as it exists, over one long HTTP "
        "response, so the reader sees text long before the answer is complete.",
        points=(
            ("On the wire", ("one `data:` line per event", "a blank line ends each event")),
            ("Timing", ("the first token after $t_1$ seconds", "then about $r$ tokens a second")),
        ),
        language="python",
        code='import httpx\n\nwith httpx.stream("POST", url, json=request) as response:\n'
        "    for line in response.iter_lines():\n"
        '        if line.startswith("data: "):\n            print(line[6:])\n',
        table=(
            ("first", "0.4 s", "the role"),
            ("second", "0.44 s", "a token"),
            ("last", "4 s", "finish"),
        ),
        inline_math=r"$T = t_1 + \frac{n}{r}$",
        display_math=r"T_{\mathrm{answer}} = t_1 + \frac{n - 1}{r}",
    ),
)
# A question that names a topic gets it (the most keywords found, then the first topic);
# any other gets one of the first four by its hash, as before the streaming topic existed.
_KEYWORDS = {
    "Fibonacci numbers": ("fibonacci",),
    "Binary search": ("binary search", "bisect", "sorted"),
    "Word frequencies": ("word frequenc", "word count", "counting words"),
    "Mean and variance": ("variance", "average", "standard deviation", "statistic"),
    "Streaming": ("stream", "sse", "server-sent", "event", "token"),
}
_HASHED_TOPICS = _TOPICS[:4]

_TABLE_HEADERS = {
    "Fibonacci numbers": ("n", "F(n)", "computed by"),
    "Binary search": ("items", "steps", "size"),
    "Word frequencies": ("word", "count", "kind"),
    "Mean and variance": ("sample", "mean", "variance"),
    "Streaming": ("event", "arrives after", "carries"),
}

# Sentences for the extra sections of long answers, picked by the prompt's hash.
_FILLER = (
    "Streaming shows each token as soon as the server sends it.",
    "A renderer that only redraws the last block keeps long answers cheap.",
    "Stopping a stream should close the connection so generation really ends.",
    "Every provider frames its events differently, but the text is the same.",
    "Rate limits come back as HTTP 429 with a hint about when to retry.",
    "Math stays readable when the delimiters survive the Markdown parser.",
    "Tables need a header row and an alignment row before any data.",
    "Code blocks keep their language so the highlighter can colour them.",
)


def demo_answer(messages: Sequence[Mapping[str, object]], words: int | None = None) -> str:
    """Return the demo model's Markdown answer to the last user message.

    ``words`` sets the approximate length in words; below what the full structure
    needs, the answer shrinks to a heading and a paragraph.
    """
    question = _last_user_text(messages)
    seed = _stable_hash(question)
    topic = _topic_for(question, seed)
    turn = sum(1 for m in messages if m.get("role") == "user")
    core = _core_answer(topic, turn, _quote(question))
    if words is None:
        factor = _LONG_FACTOR if _LONG_REQUEST.search(question) else 1
        target = len(core.split()) * factor
    else:
        target = max(1, words)
    if target < len(core.split()):
        return _short_answer(topic, turn, _quote(question), seed, target)
    return core + _extra_sections(seed, target - len(core.split()))


def demo_reasoning(messages: Sequence[Mapping[str, object]]) -> str:
    """Return the short reasoning text ``demo-reasoning`` streams before its answer."""
    question = _last_user_text(messages)
    topic = _topic_for(question, _stable_hash(question))
    turn = sum(1 for m in messages if m.get("role") == "user")
    return (
        f'The user asks: "{_quote(question)}". This is turn {turn}, so earlier turns are '
        f"in the history. I will explain {topic.title.lower()} with a list, a "
        f"{topic.language} sample, a table and a formula."
    )


def demo_tokens(text: str) -> list[str]:
    """Split ``text`` into token-like pieces whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def _last_user_text(messages: Sequence[Mapping[str, object]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _topic_for(question: str, seed: int) -> _Topic:
    """The topic the question names (its title's or keywords' words), else one by hash."""
    words = question.lower()
    hits = [
        sum(
            len(re.findall(rf"\b{re.escape(k)}", words))
            for k in (t.title.lower(), *_KEYWORDS[t.title])
        )
        for t in _TOPICS
    ]
    best = max(hits)
    if best:
        return _TOPICS[hits.index(best)]
    return _HASHED_TOPICS[seed % len(_HASHED_TOPICS)]


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; the demo must answer the same everywhere.
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _quote(question: str) -> str:
    flat = " ".join(question.split())
    if len(flat) <= _QUOTE_CHARS:
        return flat
    return flat[: _QUOTE_CHARS - 1].rstrip() + "…"


def _core_answer(topic: _Topic, turn: int, quote: str) -> str:
    outline = "\n".join(
        f"- **{head}**\n" + "\n".join(f"  - {item}" for item in items)
        for head, items in topic.points
    )
    left, middle, right = _TABLE_HEADERS[topic.title]
    rows = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in topic.table)
    return (
        f"## {topic.title}\n\n"
        f'*Turn {turn}.* You asked: "{quote}". Here is a short demo answer.\n\n'
        f"{topic.idea} The key relation is {topic.inline_math}.\n\n"
        f"{outline}\n\n"
        f"```{topic.language}\n{topic.code}```\n\n"
        f"| {left} | {middle} | {right} |\n|:---|---:|:---:|\n{rows}\n\n"
        f"$$\n{topic.display_math}\n$$\n\n"
        "Ask a follow-up and the turn number grows: every request carries the whole "
        "history. A different question picks another topic, the same question always "
        "gets this same answer.\n"
    )


def _short_answer(topic: _Topic, turn: int, quote: str, seed: int, words: int) -> str:
    lead = f'## {topic.title}\n\n*Turn {turn}.* You asked: "{quote}".'
    remaining = max(1, words - len(lead.split()))
    return lead + " " + " ".join(_sentences(seed, remaining).split()[:remaining]) + "\n"


def _extra_sections(seed: int, words: int) -> str:
    sections = []
    part = 1
    while words > 0:
        paragraph = _sentences(seed + part, min(words, 60))
        sections.append(f"\n### Going further ({part})\n\n{paragraph}\n")
        words -= len(paragraph.split()) + 3  # the heading's words count too
        part += 1
    return "".join(sections)


def _sentences(seed: int, words: int) -> str:
    picked: list[str] = []
    count = 0
    index = seed
    while count < words:
        sentence = _FILLER[index % len(_FILLER)]
        picked.append(sentence)
        count += len(sentence.split())
        index += 1
    return " ".join(picked)
