"""Hostile Markdown must never produce executable or exfiltrating HTML, at any stream prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipyllm.render import (
    SANITIZERS,
    StreamingMarkdown,
    render_markdown,
    sanitize_html,
    use_sanitizer,
)

from .safety import PAYLOADS, assert_safe, violations


# Every test here runs under nh3 and under the pure-Python fallback used where nh3 cannot
# load (Pyodide): both must keep the same promises.
@pytest.fixture(autouse=True, params=SANITIZERS)
def sanitizer(request: pytest.FixtureRequest) -> Iterator[str]:
    with use_sanitizer(request.param):
        yield str(request.param)


def test_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) >= 25


@pytest.mark.parametrize(
    "html",
    [
        '<img src="x" onerror="alert(1)">',
        "<script>alert(1)</script>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" jav&#x09;ascript:alert(1)">x</a>',
        '<a href="/api/kernels">x</a>',
        '<span style="color:red">x</span>',
        '<span class="ipyllm-math">\\(\\href{javascript:alert(1)}{x}\\)</span>',
        "<p>$\\require{html}$</p>",
    ],
)
def test_checker_catches_known_bad_html(html: str) -> None:
    assert violations(html)


@pytest.mark.parametrize("allow_images", [False, True])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_every_prefix_of_a_streamed_payload_is_safe(name: str, allow_images: bool) -> None:
    payload = PAYLOADS[name]
    renderer = StreamingMarkdown(allow_images=allow_images)
    for end, char in enumerate(payload, 1):
        renderer.append(char)
        assert_safe(renderer.html, allow_images=allow_images, context=f"{name}[:{end}]")
    final = renderer.finish()
    assert_safe(final, allow_images=allow_images, context=f"{name} finish")
    assert final == render_markdown(payload, allow_images=allow_images)


@settings(
    max_examples=40,
    deadline=None,
    # The sanitizer fixture only picks nh3 or the fallback: the same for every example.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=60), allow_images=st.booleans()
)
def test_whole_hostile_corpus_in_random_pieces_is_safe(cuts: list[int], allow_images: bool) -> None:
    text = "\n\n".join(PAYLOADS.values())
    bounds = sorted({min(cut, len(text)) for cut in cuts} | {len(text)})
    renderer = StreamingMarkdown(allow_images=allow_images)
    start = 0
    for bound in bounds:
        renderer.append(text[start:bound])
        start = bound
        assert_safe(renderer.html, allow_images=allow_images, context=f"prefix {bound}")
    assert renderer.finish() == render_markdown(text, allow_images=allow_images)


def test_raw_html_is_shown_as_text() -> None:
    html = render_markdown(PAYLOADS["01_img_onerror.md"])
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize(
    "name",
    [
        "06_javascript_link.md",
        "07_javascript_mixed_case.md",
        "08_javascript_tab_entity.md",
        "10_javascript_autolink.md",
        "13_vbscript.md",
        "23_relative_and_protocol_relative.md",
    ],
)
def test_unsafe_link_targets_render_without_a_link(name: str) -> None:
    assert "<a " not in render_markdown(PAYLOADS[name])


def test_math_macros_are_defused_but_the_math_survives() -> None:
    html = render_markdown(PAYLOADS["17_href_inline_math.md"])
    assert '<span class="ipyllm-math">\\(href{javascript:alert(1)}{click}\\)</span>' in html


def test_images_stay_links_unless_allowed_and_only_for_web_urls() -> None:
    markdown = "![chart](https://example.com/c.png) ![x](data:image/png;base64,iVBORw0KGgo=)"
    assert "<img" not in render_markdown(markdown)
    allowed = render_markdown(markdown, allow_images=True)
    assert allowed.count("<img") == 1
    assert '<img src="https://example.com/c.png" alt="chart">' in allowed


def test_sanitizer_policy_on_raw_html() -> None:
    dirty = (
        '<p onclick="x()" style="color:red">hi<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">j</a><a href="/api/kernels">r</a>'
        '<a href="https://example.com" target="_self">ok</a>'
        '<span class="k jp-Dialog">kw</span><input type="checkbox"><img src="https://e.com/i.png">'
    )
    clean = sanitize_html(dirty)
    blank = 'target="_blank" rel="noopener noreferrer"'
    assert clean == (
        f"<p>hi</p><a {blank}>j</a><a {blank}>r</a>"
        f'<a href="https://example.com" {blank}>ok</a><span class="k">kw</span>'
    )
    assert '<img src="https://e.com/i.png">' in sanitize_html(dirty, allow_images=True)
