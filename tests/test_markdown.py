"""Markdown features, math, highlighting, streaming equivalence and tail healing."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipyllm.render import (
    MARKDOWN_CSS,
    StreamingMarkdown,
    heal_inline,
    markdown_stylesheet,
    render_markdown,
)

ANSWERS_DIR = Path(__file__).parent / "corpus" / "answers"
ANSWERS = {path.name: path.read_text(encoding="utf-8") for path in sorted(ANSWERS_DIR.glob("*.md"))}
ALL_ANSWERS = "\n\n".join(ANSWERS.values())


def streamed(*deltas: str, allow_images: bool = False) -> StreamingMarkdown:
    renderer = StreamingMarkdown(allow_images=allow_images)
    for delta in deltas:
        renderer.append(delta)
    return renderer


# --------------------------------------------------------------------------- GFM features


def test_table_alignment_becomes_classes() -> None:
    html = render_markdown("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n")
    assert '<th class="ipyllm-align-left">a</th>' in html
    assert '<th class="ipyllm-align-center">b</th>' in html
    assert '<td class="ipyllm-align-right">3</td>' in html
    assert "style" not in html


def test_strikethrough() -> None:
    assert render_markdown("~~gone~~ kept") == "<p><s>gone</s> kept</p>\n"


def test_task_lists_render_as_characters() -> None:
    html = render_markdown("- [x] done\n- [ ] todo\n")
    assert '<li class="task-list-item"><span class="ipyllm-task">☑</span> done</li>' in html
    assert '<li class="task-list-item"><span class="ipyllm-task">☐</span> todo</li>' in html
    assert "<input" not in html


def test_bare_urls_become_links() -> None:
    # Skips on the library, not on our output: a broken autolink must fail, not skip.
    pytest.importorskip("mdit_py_plugins.gfm_autolink", reason="mdit-py-plugins < 0.5")
    html = render_markdown("See https://example.com/a?b=1 or www.example.org.")
    assert '<a href="https://example.com/a?b=1" target="_blank" rel="noopener noreferrer">' in html
    assert '<a href="http://www.example.org"' in html


def test_links_open_in_a_new_tab_without_referrer() -> None:
    html = render_markdown("[docs](https://example.com/docs)")
    expected = (
        '<a href="https://example.com/docs" target="_blank" rel="noopener noreferrer">docs</a>'
    )
    assert expected in html


def test_two_space_nested_lists() -> None:
    html = render_markdown("- a\n  - b\n    - c\n- d\n")
    assert re.sub(r"\s", "", html) == (
        "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>"
    )


def test_list_right_after_a_paragraph_line() -> None:
    assert render_markdown("Steps:\n- one\n- two\n") == (
        "<p>Steps:</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
    )


def test_table_right_after_a_paragraph_line() -> None:
    assert "<table>" in render_markdown("Results:\n| a | b |\n|---|---|\n| 1 | 2 |\n")


def test_code_block_inside_a_list_item() -> None:
    html = render_markdown("1. Run:\n   ```bash\n   ls -la\n   ```\n2. Done\n")
    assert re.search(
        r"<li>Run:\s*<pre class=\"ipyllm-code\"><code>.*ls.*</code></pre>\s*</li>", html, re.DOTALL
    )


def test_cjk_and_emoji_survive() -> None:
    text = "中文 **粗体** 한국어 👩‍💻 🇫🇷 é"
    assert render_markdown(text) == "<p>中文 <strong>粗体</strong> 한국어 👩‍💻 🇫🇷 é</p>\n"


def test_raw_html_is_text() -> None:
    assert render_markdown("<b>x</b>") == "<p>&lt;b&gt;x&lt;/b&gt;</p>\n"


# --------------------------------------------------------------------------- highlighting


def test_fenced_code_is_highlighted_by_language() -> None:
    html = render_markdown("```python\ndef f():\n    return 1\n```\n")
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">f</span>' in html


@pytest.mark.parametrize("info", ["", "text", "plain", "no-such-language-xyz", "{.weird}"])
def test_unknown_or_absent_language_is_escaped_plain_code(info: str) -> None:
    html = render_markdown(f"```{info}\n<b>&</b>\n```\n")
    assert html == '<pre class="ipyllm-code"><code>&lt;b&gt;&amp;&lt;/b&gt;\n</code></pre>\n'


def test_highlighting_keeps_the_code_text_exactly() -> None:
    code = "\n\nx = '<tag>'  # comment\n\n"
    html = render_markdown(f"```python\n{code}```\n")
    inner = re.fullmatch(r'<pre class="ipyllm-code"><code>(.*)</code></pre>\n', html, re.DOTALL)
    assert inner is not None
    assert unescape(re.sub(r"<[^>]+>", "", inner.group(1))) == code


def test_indented_code_block() -> None:
    assert render_markdown("    a < b\n") == (
        '<pre class="ipyllm-code"><code>a &lt; b\n</code></pre>\n'
    )


# --------------------------------------------------------------------------- math


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("Inline $x^2 + y_1$ here", '<span class="ipyllm-math">\\(x^2 + y_1\\)</span>'),
        ("Inline \\(a_1 < b\\) here", '<span class="ipyllm-math">\\(a_1 &lt; b\\)</span>'),
        (
            "$$\n\\frac{a}{b}\n$$\n",
            '<div class="ipyllm-math ipyllm-math-display">\\[\\frac{a}{b}\\]</div>',
        ),
        (
            "\\[\n\\sum_{i=1}^n i\n\\]\n",
            '<div class="ipyllm-math ipyllm-math-display">\\[\\sum_{i=1}^n i\\]</div>',
        ),
        (
            "so $$e^{i\\pi}$$ holds",
            '<span class="ipyllm-math ipyllm-math-display">\\[e^{i\\pi}\\]</span>',
        ),
        (
            "so \\[e^{i\\pi}\\] holds",
            '<span class="ipyllm-math ipyllm-math-display">\\[e^{i\\pi}\\]</span>',
        ),
        (
            "Text:\n$$\nx*y*z\n$$\n",
            '<p>Text:</p>\n<div class="ipyllm-math ipyllm-math-display">\\[x*y*z\\]</div>',
        ),
    ],
)
def test_math_reaches_mathjax_intact(markdown: str, expected: str) -> None:
    assert expected in render_markdown(markdown)


def test_prices_stay_prose_and_hidden_from_mathjax() -> None:
    html = render_markdown("It costs $5 and $10.")
    assert "ipyllm-math" not in html
    dollar = '<span class="tex2jax_ignore mathjax_ignore">$</span>'
    assert html == f"<p>It costs {dollar}5 and {dollar}10.</p>\n"


def test_math_is_not_parsed_inside_code() -> None:
    html = render_markdown("`$x$ and \\(y\\)`\n\n```\n$$z$$\n```\n")
    assert "ipyllm-math" not in html


def test_escaped_dollar_is_literal() -> None:
    assert "ipyllm-math" not in render_markdown("\\$x$ is not math")


def test_unclosed_display_math_ends_at_a_blank_line() -> None:
    html = render_markdown("$$\na + b\n\nNext paragraph.")
    assert '<div class="ipyllm-math ipyllm-math-display">\\[a + b\\]</div>' in html
    assert "<p>Next paragraph.</p>" in html


# --------------------------------------------------------------------------- images


def test_images_are_links_by_default() -> None:
    html = render_markdown("![a chart](https://example.com/c.png)")
    assert "<img" not in html
    assert (
        '<a class="ipyllm-image-link" href="https://example.com/c.png" target="_blank" '
        'rel="noopener noreferrer">🖼 a chart</a>'
    ) in html


def test_images_render_when_allowed() -> None:
    html = render_markdown("![a chart](https://example.com/c.png)", allow_images=True)
    assert '<img src="https://example.com/c.png" alt="a chart">' in html


def test_stylesheet_covers_the_emitted_classes() -> None:
    for name in (
        "ipyllm-align-right",
        "task-list-item",
        "ipyllm-code",
        ".k,",
        "ipyllm-math-display",
        "ipyllm-reasoning",
        "ipyllm-tool",
    ):
        assert name in MARKDOWN_CSS
    assert markdown_stylesheet() == f"<style>{MARKDOWN_CSS}</style>"


# --------------------------------------------------------------------------- streaming


def typed(text: str) -> StreamingMarkdown:
    """A renderer fed ``text`` one character at a time, its HTML read after each."""
    renderer = StreamingMarkdown()
    for char in text:
        renderer.append(char)
        _ = renderer.html
    return renderer


def stream_in_pieces(text: str, cuts: list[int], reads: set[int] | None = None) -> str:
    """Stream ``text`` cut at ``cuts``, checking that frozen entries never change."""
    renderer = StreamingMarkdown()
    bounds = sorted({min(cut, len(text)) for cut in cuts} | {len(text)})
    frozen: list[str] = []
    start = 0
    for step, bound in enumerate(bounds):
        renderer.append(text[start:bound])
        start = bound
        if reads is None or step in reads:
            assert renderer.html.startswith("".join(frozen))
            now = renderer.frozen
            assert now[: len(frozen)] == frozen
            frozen = now
    final = renderer.finish()
    assert renderer.frozen[: len(frozen)] == frozen
    if not renderer.rerendered:
        assert "".join(renderer.frozen) + renderer.tail_html == final
    assert renderer.text == text
    return final


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_one_character_deltas_match_one_shot(name: str) -> None:
    text = ANSWERS[name]
    reads = set(range(0, len(text), 3))
    assert stream_in_pieces(text, list(range(len(text))), reads) == render_markdown(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from([*sorted(ANSWERS), "all"]),
    cuts=st.lists(st.integers(min_value=0, max_value=len(ALL_ANSWERS)), max_size=80),
)
def test_random_splits_match_one_shot(name: str, cuts: list[int]) -> None:
    text = ALL_ANSWERS if name == "all" else ANSWERS[name]
    assert stream_in_pieces(text, cuts) == render_markdown(text)


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab *_`$|-=#>[]()!\\\n\n:~1.")), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=12),
)
def test_random_markdown_soup_matches_one_shot(text: str, cuts: list[int]) -> None:
    assert stream_in_pieces(text, cuts) == render_markdown(text)


def test_complete_blocks_are_frozen_while_streaming() -> None:
    renderer = streamed("# Title\n\nFirst paragraph.\n\n- a\n- b\n\nLast\nline")
    assert renderer.frozen == [
        "<h1>Title</h1>\n",
        "<p>First paragraph.</p>\n",
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n",
    ]
    assert renderer.tail_html == "<p>Last\nline</p>\n"


def test_a_block_is_frozen_only_after_the_next_line_is_complete() -> None:
    renderer = streamed("para\n#")  # "#" could still become "#hashtag" (paragraph text)
    assert renderer.frozen == []
    renderer.append("tag\n")
    assert renderer.frozen == []
    assert renderer.finish() == render_markdown("para\n#tag\n")


def test_loose_list_continuing_after_blank_lines() -> None:
    text = "- a\n- b\n\n- c\n\nafter\n"
    assert stream_in_pieces(text, list(range(len(text)))) == render_markdown(text)
    assert "<li>\n<p>a</p>" in render_markdown(text)


def test_late_reference_definition_still_links_earlier_blocks() -> None:
    text = "See [the docs].\n\nMore text.\n\nEven more.\n\n[the docs]: https://example.com\n"
    renderer = typed(text)
    assert renderer.frozen[0] == "<p>See [the docs].</p>\n"  # frozen before the definition
    final = renderer.finish()
    assert renderer.rerendered
    assert final == render_markdown(text)
    assert '<a href="https://example.com"' in final


def test_undefined_citations_and_task_items_do_not_keep_blocks_in_the_tail() -> None:
    blocks = [f"Point {n} [1].\n\n- [x] done {n}\n- [ ] open {n}\n\n" for n in range(40)]
    renderer = StreamingMarkdown()
    for block in blocks:
        renderer.append(block)
        assert len(renderer.tail_html) < 300  # only the last block or two, never the answer
    assert not renderer.rerendered
    assert "".join(renderer.frozen) + renderer.tail_html == renderer.finish()


def test_crlf_split_across_deltas() -> None:
    renderer = streamed("line one\r")
    _ = renderer.html
    renderer.append("\nline two\r\n\r\n# h\r")
    _ = renderer.html
    assert renderer.finish() == render_markdown("line one\r\nline two\r\n\r\n# h\r")


# Lines that start, end, continue or redefine blocks: list items at several depths, lazy
# lines, table rows, fences, math, link definitions (also inside items), rules, headings.
BLOCK_PIECES = [
    *["- a\n", "- b **c\n", "  - nested\n", "    1. deep\n", "1. one\n", "2. two\n", "* star\n"],
    *[
        "- [ ] task\n",
        "  cont\n",
        "lazy text\n",
        "\n",
        "para *em\n",
        "> quote\n",
        "> - quoted item\n",
    ],
    *["| a | b |\n", "|---|---|\n", "  |--|--|\n", "    |---|\n", "| 1 | 2 |\n", "a | b\n"],
    *["```\n", "```py\n", "x = 1\n", "  ```\n", "$$\n", "a + b$$\n", "$$x$$ y\n", "    indented\n"],
    *[
        "[a]: http://a.org\n",
        "- [b]: http://b.org\n",
        "see [a] [b]\n",
        "[c]:\n",
        "<http://c.org>\n",
    ],
    *["---\n", "===\n", "- - -x\n", "# head\n", "#tag\n", "-\n", "1.5 x\n", "--a\n"],
]


def fresh(text: str) -> tuple[list[str], str]:
    renderer = streamed(text)
    return renderer.frozen, renderer.tail_html


def assert_frames_match_fresh_renderers(text: str, cuts: list[int]) -> None:
    """A renderer fed ``text`` piece by piece (reusing what it parsed for earlier frames)
    shows, at every cut, what a new renderer given the text up to there at once shows."""
    renderer = StreamingMarkdown()
    start = 0
    for bound in sorted({min(cut, len(text)) for cut in cuts} | {len(text)}):
        renderer.append(text[start:bound])
        start = bound
        assert (renderer.frozen, renderer.tail_html) == fresh(text[:bound]), text[:bound]
    assert renderer.finish() == render_markdown(text)


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("step", [4, 11])
def test_every_frame_matches_a_renderer_given_the_text_at_once(name: str, step: int) -> None:
    text = ANSWERS[name]
    assert_frames_match_fresh_renderers(text, list(range(0, len(text), step)))


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(BLOCK_PIECES), max_size=14),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=25),
)
def test_block_soup_frames_match_a_renderer_given_the_text_at_once(
    pieces: list[str], cuts: list[int]
) -> None:
    text = "".join(pieces)
    assert_frames_match_fresh_renderers(text, cuts)
    assert stream_in_pieces(text, cuts) == render_markdown(text)


@pytest.mark.parametrize(
    ("before", "typed"),
    [
        ("Intro\n| a |", "\n|-"),  # the row under it makes the line a table header
        ("- item\n| a |", "\n    |-"),  # ... or ends the list item it continued
    ],
)
def test_a_line_in_doubt_until_the_next_one_is_complete_stays_live(before: str, typed: str) -> None:
    # The complete lines hold one block: none is frozen, whatever the half-typed line says.
    renderer = streamed(before)
    _ = renderer.html
    renderer.append(typed)
    assert renderer.frozen == []
    assert renderer.html == fresh(before + typed)[1]


def test_a_half_typed_link_definition_does_not_hide_a_complete_block() -> None:
    # "[a]:" is a paragraph, so "x" before it is complete; the half-typed line would make
    # both one definition (which has no token) and leave "x" alone in the live text.
    renderer = streamed("x\n\n[a]:")
    _ = renderer.html
    renderer.append("\n<https://a.org>")
    assert renderer.frozen == ["<p>x</p>\n"]
    assert renderer.finish() == render_markdown("x\n\n[a]:\n<https://a.org>")


def test_list_items_defining_links_stream_like_one_shot() -> None:
    text = "- [a]: https://a.org\n- see [a]\n- more [a]\n\n1. x\n\n   [b]: https://b.org\n2. [b]\n"
    assert_frames_match_fresh_renderers(text, list(range(len(text))))
    assert '<a href="https://b.org"' in stream_in_pieces(text, list(range(len(text))))


def test_late_definition_renders_again_only_the_blocks_that_missed_it() -> None:
    text = "See [x] and [1].\n\nNo links.\n\nOnly [1].\n\n[x]: https://x.org\n"
    renderer = typed(text)
    assert renderer.finish() == render_markdown(text)
    assert renderer.rerendered


def test_tail_is_rendered_lazily() -> None:
    renderer = streamed("Some text")
    first = renderer.tail_html
    assert renderer.tail_html is first
    renderer.append(" more")
    assert renderer.tail_html == "<p>Some text more</p>\n"


def test_append_after_finish_is_an_error() -> None:
    renderer = streamed("done")
    renderer.finish()
    with pytest.raises(RuntimeError):
        renderer.append("more")


def test_finish_does_not_heal() -> None:
    renderer = streamed("Some **bold")
    assert "<strong>" in renderer.html
    assert renderer.finish() == "<p>Some **bold</p>\n"


# --------------------------------------------------------------------------- healing


@pytest.mark.parametrize(
    ("partial", "expected_html"),
    [
        # setext underline being typed is not a heading yet
        ("Text\n-", "<p>Text</p>\n"),
        ("Text\n=", "<p>Text</p>\n"),
        # fence opener still being typed: nothing, not a language-less code block
        ("```", ""),
        ("```pyth", ""),
        ("Intro\n\n```pyth", "<p>Intro</p>\n"),
        # table header waiting for its delimiter row
        ("Intro\n\n| a | b |", "<p>Intro</p>\n"),
        ("Intro\n\n| a | b |\n|--", "<p>Intro</p>\n"),
        # unclosed inline markers are closed
        ("Some **bold", "<p>Some <strong>bold</strong></p>\n"),
        ("Some __bold", "<p>Some <strong>bold</strong></p>\n"),
        ("Some *it", "<p>Some <em>it</em></p>\n"),
        ("Some _it", "<p>Some <em>it</em></p>\n"),
        ("a **b *c", "<p>a <strong>b <em>c</em></strong></p>\n"),
        ("Use `code", "<p>Use <code>code</code></p>\n"),
        ("Use ``a ` b", "<p>Use <code>a ` b</code></p>\n"),
        ("x ~~gone", "<p>x <s>gone</s></p>\n"),
        ("- item **bo", "<ul>\n<li>item <strong>bo</strong></li>\n</ul>\n"),
        ("## Head *it", "<h2>Head <em>it</em></h2>\n"),
        # a trailing marker run waits: it may open or close
        ("end **", "<p>end</p>\n"),
        # half-typed links show their text, not the URL
        ("see [docs](https://exa", "<p>see docs</p>\n"),
        ("see [**docs**](https://exa", "<p>see <strong>docs</strong></p>\n"),
        ("see ![pic](https://exa", "<p>see pic</p>\n"),
        # half-typed math is hidden (inline) or shown as pending source (display)
        ("a \\(x^", "<p>a</p>\n"),
        ("a $$x^", "<p>a</p>\n"),
        ("$$\nx^2 + \\frac{a", '<pre class="ipyllm-math-pending">$$\nx^2 + \\frac{a</pre>\n'),
        ("\\[\nx", '<pre class="ipyllm-math-pending">\\[\nx</pre>\n'),
        # prices are not math, so an "open" $ is left alone
        (
            "costs $5 and",
            '<p>costs <span class="tex2jax_ignore mathjax_ignore">$</span>5 and</p>\n',
        ),
        # markers inside code or complete links are not "open"
        ("`a*b` and [x_y](https://e.com/a_b) c", None),
    ],
)
def test_tail_healing(partial: str, expected_html: str | None) -> None:
    renderer = streamed(*partial)  # one character at a time, nothing read in between
    if expected_html is None:
        expected_html = render_markdown(partial)
    assert renderer.html == expected_html


def test_healing_never_touches_frozen_blocks() -> None:
    renderer = streamed("A **literal\n\nB **open\nstill")
    assert renderer.frozen == ["<p>A **literal</p>\n"]
    assert renderer.tail_html == "<p>B <strong>open\nstill</strong></p>\n"


def test_paragraph_ended_by_blank_line_is_not_healed() -> None:
    assert streamed("x **y\n\n").html == "<p>x **y</p>\n"


def test_complete_setext_heading_is_a_heading() -> None:
    assert streamed("Text\n---\n").html == "<h2>Text</h2>\n"


def test_unclosed_fence_streams_as_code() -> None:
    html = streamed("```python\nx = 1\ny =").html
    assert html.startswith('<pre class="ipyllm-code"><code>')
    assert '<span class="n">x</span>' in html
    assert html.endswith("y =</code></pre>\n")


@pytest.mark.parametrize(
    ("content", "healed"),
    [
        ("**a", "**a**"),
        ("a_b", "a_b"),
        ("2 * 3", "2 * 3"),
        ("*a **b", "*a **b***"),
        ("[t](u", "t"),
        ("`x` **y", "`x` **y**"),
        ("\\*a", "\\*a"),
    ],
)
def test_heal_inline(content: str, healed: str) -> None:
    assert heal_inline(content) == healed
