"""The pure-Python sanitizer (where nh3 cannot load: Pyodide) against nh3 itself.

- differential: whatever HTML comes in, every tag, attribute and value the fallback keeps is
  one nh3 keeps too, and nh3 finds nothing to remove in what the fallback writes;
- the fallback's output passes tests/safety.py's checker for any input;
- on Markdown, the renderer's output is byte for byte the same under both, for the answer
  corpus and every hostile payload, live and in the static copy (MathML included);
- ``import ipyllm`` and rendering work in a Python where nh3, orjson and genai-prices cannot
  be imported, as in Pyodide, and every hostile payload stays inert there.

(tests/test_sanitize.py runs the hostile corpus under both sanitizers as well.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipyllm.render import (
    ALLOWED_TAGS,
    render_markdown,
    sanitize_html,
    sanitize_mathml,
    sanitizer,
    use_sanitizer,
)

from .safety import PAYLOADS, assert_safe

nh3 = pytest.importorskip("nh3")

ANSWERS = {
    path.name: path.read_text(encoding="utf-8")
    for path in sorted((Path(__file__).parent / "corpus" / "answers").glob("*.md"))
}


def clean(document: str, allow_images: bool, backend: Literal["nh3", "fallback"]) -> str:
    with use_sanitizer(backend):
        return sanitize_html(document, allow_images=allow_images)


def test_each_sanitizer_is_used_where_it_is_asked_for() -> None:
    assert sanitizer() == "nh3"  # wherever nh3 imports
    with use_sanitizer("fallback"):
        assert sanitizer() == "fallback"
    assert sanitizer() == "nh3"
    with pytest.raises(ValueError, match="cannot clean here"), use_sanitizer("bleach"):  # type: ignore[arg-type]
        pass


class _Kept(HTMLParser):
    """Every (tag, attribute, value) of a document, a tag alone as (tag, "", ""), and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.kept: set[tuple[str, str, str]] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.kept.add((tag, "", ""))
        for name, value in attrs:
            self.kept.add((tag, name, value or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def kept(html: str) -> tuple[set[tuple[str, str, str]], str]:
    parser = _Kept()
    parser.feed(html)
    parser.close()
    return parser.kept, "".join(sorted(re.sub(r"\s+", "", "".join(parser.text))))


# -- HTML made to probe the policy ------------------------------------------------------------

TAGS = sorted(
    ALLOWED_TAGS
    | {"img", "script", "style", "svg", "math", "mi", "mtext", "textarea", "title", "noscript",
       "template", "select", "iframe", "xmp", "b", "image", "input", "form", "object", "body",
       "caption", "tfoot", "button", "foreignobject", "annotation-xml", "plaintext", "frameset"}
)  # fmt: skip
ATTRIBUTES = ["href", "src", "title", "class", "onclick", "onerror", "style", "start", "target",
              "rel", "alt", "xlink:href", "formaction", "action", "id", "srcdoc"]  # fmt: skip
VALUES = [
    "https://example.com/a?b=1#c", "http://x.org", "HTTPS://EXAMPLE.COM", " https://a.b ",
    "javascript:alert(1)", " JaVaScRiPt:alert(1)", "jav\tascript:x", "java&#x09;script:x",
    "&#106;avascript:x", "//evil.example", "/api/kernels", "?x", "#top", "mailto:a@b.c",
    "mailto://x<y", "data:text/html,<script>", "vbscript:x", "file:///etc/passwd", "http://",
    "https://exa mple.com", "http://1.2.3.4:80/", "http://1.2.3.999/", "http://[::1]/",
    "https://xn--bcher-kva.example/", "http://xn--zz.com/", "http://u:p@host.example/",
    "http://a:99999/", "http:example.com", "http:\\\\example.com", "k", "kd jp-Dialog",
    "ipyllm-math", "ipyllm-align-left", "contains-task-list", "task-list-item", "3", "-1",
    "x onmouseover=alert(1)", '"><script>alert(1)</script>', "&quot;&lt;", "\u00a0", "",
]  # fmt: skip
NOISE = ["<!--", "-->", "<![CDATA[", "]]>", "<", "</", ">", "&amp;", "&lt;", "&#0;", "\x00",
         "\r\n", "<!doctype html>", "<?php ?>", "</p>", "</br>", "<p/>", "&nbsp;"]  # fmt: skip

attribute = st.tuples(st.sampled_from(ATTRIBUTES), st.sampled_from(VALUES))
text = st.text(alphabet=st.sampled_from(list("ab <>&\"'=/\n\t")), max_size=8)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def build(tag: str, attrs: list[tuple[str, str]], inner: list[str], close: bool) -> str:
        written = "".join(f' {name}="{value.replace(chr(34), "&quot;")}"' for name, value in attrs)
        return f"<{tag}{written}>{''.join(inner)}" + (f"</{tag}>" if close else "")

    return st.builds(
        build,
        st.sampled_from(TAGS),
        st.lists(attribute, max_size=4),
        st.lists(children, max_size=4),
        st.booleans(),
    )


html_documents = st.recursive(st.one_of(text, st.sampled_from(NOISE)), _element, max_leaves=25).map(
    str
)


# Derandomized: the same examples every run, so a corner of html5ever's tree building not
# mirrored yet cannot fail an unrelated change (the fallback is stricter there, never looser).
@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=st.lists(html_documents, max_size=4).map("".join), allow_images=st.booleans())
def test_the_fallback_keeps_nothing_nh3_removes(document: str, allow_images: bool) -> None:
    ours = clean(document, allow_images, "fallback")
    kept_by_nh3, _ = kept(clean(document, allow_images, "nh3"))
    kept_by_us, _ = kept(ours)
    assert kept_by_us <= kept_by_nh3, (kept_by_us - kept_by_nh3, document, ours)
    assert_safe(ours, allow_images=allow_images, context=document)


# Derandomized: the same examples every run, so a corner of html5ever's tree building not
# mirrored yet cannot fail an unrelated change (the fallback is stricter there, never looser).
@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=st.lists(html_documents, max_size=4).map("".join), allow_images=st.booleans())
def test_nh3_finds_nothing_to_remove_in_the_fallback_output(
    document: str, allow_images: bool
) -> None:
    ours = clean(document, allow_images, "fallback")
    again = clean(ours, allow_images, "nh3")
    (ours_kept, ours_text), (again_kept, again_text) = kept(ours), kept(again)
    assert ours_kept <= again_kept, (ours_kept - again_kept, document, ours, again)
    assert ours_text == again_text, (ours, again)


@settings(max_examples=300, deadline=None)
@given(document=st.text(alphabet=st.sampled_from(list("<>/=\"' &;#!-?abcdeilmnoprstx\n\x00"))))
def test_the_fallback_output_is_safe_for_any_text(document: str) -> None:
    for allow_images in (False, True):
        ours = clean(document, allow_images, "fallback")
        assert_safe(ours, allow_images=allow_images, context=repr(document))
        kept_by_nh3, _ = kept(clean(ours, allow_images, "nh3"))
        assert kept(ours)[0] <= kept_by_nh3, (document, ours)


def fallback_link(url: str) -> str:
    """A link to ``url`` as the fallback sanitizer keeps it (its href only if the URL passes)."""
    return clean(f'<a href="{escape(url)}">x</a>', False, "fallback")


@pytest.mark.parametrize(
    "url",
    ["https://example.com", "HTTP://a.b/c d", " https://a.b ", "mailto:x@y.z",
     "http://10.0.0.1:8080/", "http://[2001:db8::1]/", "https://xn--bcher-kva.example/"],
)  # fmt: skip
def test_plain_urls_pass(url: str) -> None:
    assert " href=" in fallback_link(url)


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", " jav\tascript:alert(1)", "//evil.example", "/api/kernels", "",
     "data:text/html,x", "http://", "http://a b/", "http://1.2.3.999/", "http://a:70000/",
     "http:example.com", "http://xn--zz.com/", "http://ex%41mple.com/", "mailto://x<y",
     "https://ex\u00e4mple.com/", "http://[fe80::1%25eth0]/"],
)  # fmt: skip
def test_other_urls_fail(url: str) -> None:
    assert " href=" not in fallback_link(url)


# -- the renderer's output: the same under both --------------------------------------------


@pytest.mark.parametrize("allow_images", [False, True])
@pytest.mark.parametrize("name", sorted(ANSWERS) + sorted(PAYLOADS))
def test_markdown_renders_the_same_under_both(name: str, allow_images: bool) -> None:
    text = ANSWERS.get(name) or PAYLOADS[name]
    with use_sanitizer("nh3"):
        strict = render_markdown(text, allow_images=allow_images)
    with use_sanitizer("fallback"):
        ours = render_markdown(text, allow_images=allow_images)
    assert ours == strict


@pytest.mark.parametrize("name", sorted(ANSWERS) + sorted(PAYLOADS))
def test_the_static_copy_is_the_same_under_both(name: str) -> None:
    from .test_static_math import static_html, static_violations

    text = ANSWERS.get(name) or PAYLOADS[name]
    with use_sanitizer("nh3"):
        strict = static_html(text)
    with use_sanitizer("fallback"):
        ours = static_html(text)
    assert not static_violations(ours), (name, static_violations(ours))
    assert ours == strict


@settings(max_examples=150, deadline=None)
@given(
    tex=st.text(
        alphabet=st.sampled_from(list("x^_{}\\()[]<>&\"' =+-12abfrachtexsqrt")), max_size=40
    )
)
def test_mathml_from_any_tex_is_the_same_under_both(tex: str) -> None:
    from latex2mathml.converter import convert

    try:
        markup = convert(tex)
    except Exception:  # not TeX latex2mathml can read: nothing reaches the sanitizer
        return
    with use_sanitizer("nh3"):
        strict = sanitize_mathml(markup)
    with use_sanitizer("fallback"):
        ours = sanitize_mathml(markup)
    assert ours == strict, (tex, markup)


# -- a Python without nh3, orjson and genai-prices, as in Pyodide ------------------------------

WITHOUT_COMPILED = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("nh3", "orjson", "genai_prices", "pydantic_core", "jiter"):
                raise ImportError(f"no {name} here (as in Pyodide)")
            return None

    sys.meta_path.insert(0, Refuse())
    payloads = json.loads(sys.stdin.read())

    import asyncio
    import ipyllm
    from ipyllm.render import StreamingMarkdown, render_markdown, sanitizer

    rendered = {}
    for name, text in payloads.items():
        for allow_images in (False, True):
            streaming = StreamingMarkdown(allow_images=allow_images)
            prefixes = []
            for start in range(0, len(text), 13):
                streaming.append(text[start:start + 13])
                prefixes.append(streaming.html)
            final = streaming.finish()
            assert final == render_markdown(text, allow_images=allow_images), name
            rendered[f"{name}/{allow_images}"] = [final, *prefixes[::5]]
    transcript = asyncio.run(ipyllm.achat("Hello there", provider="demo"))
    print(json.dumps({
        "sanitizer": sanitizer(),
        "loaded": sorted(m for m in ("nh3", "orjson", "genai_prices", "jiter") if m in sys.modules),
        "rendered": rendered,
        "demo": [transcript.status, len(transcript.text)],
    }))
    """
)


@pytest.mark.timeout(300)
def test_ipyllm_works_without_nh3_orjson_and_genai_prices() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_COMPILED],
        input=json.dumps(PAYLOADS),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["sanitizer"] == "fallback"
    assert result["loaded"] == []
    assert result["demo"][0] == "done" and result["demo"][1] > 50
    assert len(result["rendered"]) == 2 * len(PAYLOADS)
    for key, pieces in result["rendered"].items():
        for html in pieces:
            assert_safe(html, allow_images=key.endswith("/True"), context=key)
