"""CPU cost of streaming Markdown rendering versus one-shot and naive re-rendering.

Run: python benchmarks/bench_render.py  (prints a table, asserts nothing)

The answer is the corpus of LLM-style answers (tests/corpus/answers) concatenated until it
reaches the target size, streamed in ~4-character deltas; the HTML is read every 5 deltas.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ipyllm.render import StreamingMarkdown, highlight_code, render_markdown, sanitize_html

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "answers"
DELTA_CHARS = 4  # 20,000 characters -> 5,000 deltas
READ_EVERY = 5


def build_answer(min_chars: int) -> str:
    answers = [path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.md"))]
    parts: list[str] = []
    while sum(map(len, parts)) < min_chars:
        parts.append(answers[len(parts) % len(answers)])
    return "\n\n".join(parts)


def cpu_seconds(action: Callable[[], object], repeat: int = 1) -> float:
    """Median process time of ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        highlight_code.cache_clear()  # every run starts cold
        start = time.process_time()
        action()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def deltas_of(text: str) -> list[str]:
    return [text[i : i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)]


def stream(deltas: list[str]) -> str:
    renderer = StreamingMarkdown()
    for count, delta in enumerate(deltas, 1):
        renderer.append(delta)
        if count % READ_EVERY == 0:
            _ = renderer.html
    return renderer.finish()


def rerender_whole(deltas: list[str]) -> None:
    text = ""
    for count, delta in enumerate(deltas, 1):
        text += delta
        if count % READ_EVERY == 0:
            render_markdown(text)
    render_markdown(text)


def main() -> None:
    print(f"{'case':<52}{'CPU s':>10}{'ratio':>10}")
    results: dict[int, float] = {}
    for size in (20_000, 80_000):
        text = build_answer(size)
        deltas = deltas_of(text)
        one_shot = cpu_seconds(lambda text=text: render_markdown(text), repeat=15)
        streamed = cpu_seconds(lambda deltas=deltas: stream(deltas), repeat=5)
        results[size] = streamed
        label = f"{len(text):,} chars, {len(deltas):,} deltas"
        print(f"{'one-shot render_markdown, ' + label:<52}{one_shot:>10.4f}{1:>10.1f}")
        print(
            f"{'streaming (html every 5 deltas + finish)':<52}{streamed:>10.4f}"
            f"{streamed / one_shot:>10.1f}"
        )
        if size == 20_000:
            naive = cpu_seconds(lambda deltas=deltas: rerender_whole(deltas))
            print(
                f"{'naive: render_markdown(whole text) per frame':<52}{naive:>10.4f}"
                f"{naive / one_shot:>10.1f}"
            )
            naive_20k = naive
        else:
            # Quadratic: frames x length both grow 4x. Too slow to run; extrapolated.
            print(
                f"{'naive per frame (extrapolated x16 from 20k)':<52}{naive_20k * 16:>10.4f}"
                f"{naive_20k * 16 / one_shot:>10.1f}"
            )
    print(
        f"{'streaming growth 80k / 20k (linear = 4)':<52}{'':>10}"
        f"{results[80_000] / results[20_000]:>10.1f}"
    )

    text = build_answer(20_000)
    small_html = render_markdown("A **short** paragraph with `code` and a [link](https://x.org).")
    full_html = render_markdown(text)
    calls = 2_000
    small = cpu_seconds(lambda: [sanitize_html(small_html) for _ in range(calls)]) / calls
    full = cpu_seconds(lambda: sanitize_html(full_html), repeat=20)
    print(
        f"{f'sanitize_html, one small block ({len(small_html)} chars), us/call':<52}"
        f"{small * 1e6:>10.1f}"
    )
    print(
        f"{f'sanitize_html, whole answer ({len(full_html):,} chars), ms/call':<52}"
        f"{full * 1e3:>10.2f}"
    )


if __name__ == "__main__":
    main()
