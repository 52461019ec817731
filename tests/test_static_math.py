"""Math in the static copy: MathML made in Python beside the TeX MathJax reads, and still inert.

The static copy must show math with no network and no script (an exported page offline,
VS Code), and exactly once where MathJax typesets outputs (JupyterLab). Each formula is kept
as MathML, converted by latex2mathml and passed through the MathML allow-list, and as TeX.
Every hostile payload is run through it again, since the converter is one more parser that
model output reaches.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from ipyllm import Transcript
from ipyllm.render import render_markdown, sanitize_mathml, static_bundle

from .safety import PAYLOADS, SafetyChecker

# What latex2mathml emits and the static copy may hold, written out here independently of the
# sanitizer's own list: presentation elements, each with attributes that cannot run, load or
# style anything.
MATHML_ELEMENTS = {
    "math", "mrow", "mi", "mn", "mo", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac",
    "msqrt", "mroot", "mstyle", "mpadded", "mphantom", "menclose", "mtable", "mtr", "mtd",
    "munder", "mover", "munderover",
}  # fmt: skip
MATHML_ATTRIBUTES = {
    "display", "mathvariant", "form", "accent", "accentunder", "fence", "largeop",
    "movablelimits", "separator", "stretchy", "lspace", "rspace", "minsize", "maxsize",
    "linethickness", "width", "height", "depth", "voffset", "linebreak", "displaystyle",
    "scriptlevel", "mathsize", "mathcolor", "mathbackground", "notation", "columnlines",
    "rowlines", "columnspacing", "rowspacing", "columnalign",
}  # fmt: skip
# An attribute value of MathML may be a word, a number with a unit or a colour, nothing more.
PLAIN_VALUE = re.compile(r"[#\w.+\- ]*")


class StaticCopyChecker(SafetyChecker):
    """tests/safety.py's rules, plus MathML allowed only as the allow-list says, and only
    inside the MathJax-ignored, hidden wrapper the static copy puts it in."""

    def __init__(self) -> None:
        super().__init__(allow_images=False)
        self.wrappers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in MATHML_ELEMENTS:
            classes = (dict(attrs).get("class") or "").split()
            if tag == "span" and "ipyllm-mathml" in classes:
                self.wrappers.append(str(attrs))
                assert dict(attrs).get("hidden") == "hidden"  # hidden where CSS is stripped
                assert "mathjax_ignore" in classes  # MathJax never reads the MathML's text
                attrs = [(name, value) for name, value in attrs if name != "hidden"]
            super().handle_starttag(tag, attrs)
            return
        if not (self._skipping and self._skipping[-1]):
            self.violations.append(f"<{tag}> outside the MathJax-ignored MathML wrapper")
        for name, value in attrs:
            if name not in MATHML_ATTRIBUTES or not PLAIN_VALUE.fullmatch(value or ""):
                self.violations.append(f"attribute {name}={value!r} on <{tag}>")
        self._skipping.append(True)


def finished() -> Transcript:
    transcript = Transcript(provider="demo", model="demo")
    transcript.start()
    transcript.end("done")
    return transcript


def static_html(markdown: str) -> str:
    """The static copy's HTML of an answer, from its markup on: the style sheets before it
    are ipyllm's own constants, checked to be the same whatever the answer."""
    data, _ = static_bundle(finished(), render_markdown(markdown), "")
    styles, start, rest = data["text/html"].partition('<div class="ipyllm ipyllm-static">')
    assert start, data["text/html"][:200]
    assert styles == STYLES_WITH_MATH or styles == "<style></style>", styles
    return start + rest


def static_violations(html: str) -> list[str]:
    checker = StaticCopyChecker()
    checker.feed(html)
    checker.close()
    checker.check_mathjax_text()
    return checker.violations


def _styles_with_math() -> str:
    data, _ = static_bundle(finished(), render_markdown("$x$"), "")
    return data["text/html"].partition('<div class="ipyllm ipyllm-static">')[0]


STYLES_WITH_MATH = _styles_with_math()


# -- what the static copy shows -----------------------------------------------------------


def test_math_is_kept_as_mathml_beside_the_tex_that_mathjax_reads() -> None:
    html = static_html("Area $A = \\pi r^2$, and\n\n$$\n\\frac{a}{b}\n$$\n")
    inline = re.search(r'<span class="ipyllm-math">(.*?)</span></span>', html)
    assert inline, html
    assert '<math display="inline"><mrow><mi>A</mi><mo>=</mo><mi>π</mi>' in inline.group(1)
    assert '<span class="ipyllm-tex">\\(A = \\pi r^2\\)' in inline.group(1)
    assert '<div class="ipyllm-math ipyllm-math-display">' in html
    assert '<math display="block"><mrow><mfrac>' in html
    assert '<span class="ipyllm-tex">\\[\\frac{a}{b}\\]</span>' in html
    # No script and nothing fetched: what shows the math offline is in the output itself.
    assert "<script" not in html and "http" not in html
    assert not static_violations(html)


def test_the_stylesheet_shows_one_rendering_never_both() -> None:
    css = STYLES_WITH_MATH
    # Without MathJax: MathML shown (its hidden attribute overridden), TeX clipped away.
    assert ".ipyllm-mathml[hidden] { display: inline; }" in css
    assert re.search(r"\.ipyllm-tex \{ position: absolute;[^}]*clip-path: inset\(50%\)", css)
    # Once MathJax (v3 or v2) has typeset the TeX: the MathML goes, the TeX's rendering shows.
    for typeset in ("mjx-container", ".MathJax_CHTML", ".MathJax"):
        assert typeset in css
    assert re.search(r":has\([^)]*\) > \.ipyllm-mathml \{ display: none; \}", css)
    # An answer without math carries no extra style sheet.
    plain, _ = static_bundle(finished(), "<p>x</p>", "")
    assert plain["text/html"].count("<style>") == 1


@pytest.mark.parametrize(
    "tex",
    [
        "x^2^3",  # latex2mathml: double superscript
        "\\left( x",  # \\left without \\right
        "\\begin{matrix}a",  # no \\end
        "{" * 5000 + "x" + "}" * 5000,  # deeper than the converter's recursion
        "x+" * 6000 + "x",  # longer than the static copy converts
    ],
)
def test_a_formula_that_cannot_be_converted_stays_tex(tex: str) -> None:
    html = static_html(f"before ${tex}$ after")
    assert "<math" not in html
    assert '<span class="ipyllm-math">\\(' in html  # as rendered live: TeX for MathJax
    assert not static_violations(html)


def test_one_failure_does_not_cost_the_other_formulas() -> None:
    html = static_html("$x^2^3$ and $y^2$")
    assert html.count("<math") == 1 and "<mi>y</mi>" in html


# -- hostile output, through the converter ----------------------------------------------------

MATH_PAYLOADS = sorted(
    name for name, text in PAYLOADS.items() if "$" in text or "\\(" in text or "\\[" in text
)


def test_the_math_payloads_reach_the_converter() -> None:
    assert {
        "35_math_html_in_tex.md",
        "36_math_macros_to_mathml.md",
        "37_math_huge_nesting.md",
    } <= set(MATH_PAYLOADS)
    converted = [name for name in MATH_PAYLOADS if "<math" in static_html(PAYLOADS[name])]
    assert len(converted) >= 10, converted


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_every_hostile_payload_stays_inert_in_the_static_copy(name: str) -> None:
    html = static_html(PAYLOADS[name])
    assert not static_violations(html), (name, static_violations(html), html)


def test_html_written_inside_tex_never_becomes_markup() -> None:
    html = static_html(PAYLOADS["35_math_html_in_tex.md"])
    for tag in ("<img", "<script", "<svg", "<iframe", "<a ", "<b ", "<mglyph", "<style"):
        assert tag not in html, tag
    # latex2mathml passes \text{...} through unescaped: the allow-list is what stops it.
    assert "<mtext></mtext>" in html


def test_macros_that_link_or_style_reach_mathml_only_as_letters() -> None:
    html = static_html(PAYLOADS["36_math_macros_to_mathml.md"])
    mathml = "".join(re.findall(r"<math.*?</math>", html, re.DOTALL))
    for attribute in (" href=", " style=", " class=", " id=", "onclick", "url(", "expression("):
        assert attribute not in mathml, attribute
    assert "<mi>h</mi><mi>r</mi><mi>e</mi><mi>f</mi>" in html  # \href lost its backslash


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = self.deepest = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.depth += 1
        self.deepest = max(self.deepest, self.depth)

    def handle_endtag(self, tag: str) -> None:
        self.depth -= 1


def test_deep_nesting_converts_or_falls_back_and_stays_balanced() -> None:
    html = static_html(PAYLOADS["37_math_huge_nesting.md"])
    depth = _Depth()
    depth.feed(html)
    assert depth.depth == 0  # every element closed
    assert depth.deepest > 150  # the nested braces did become nested MathML
    assert not static_violations(html)


# -- the MathML allow-list itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ('<math><mrow href="javascript:alert(1)"><mi>x</mi></mrow></math>',
         "<math><mrow><mi>x</mi></mrow></math>"),
        ('<math><mi onclick="alert(1)" style="color:red" class="jp-Dialog" id="a">x</mi></math>',
         "<math><mi>x</mi></math>"),
        ('<math><maction actiontype="statusline"><mi>x</mi><mtext>y</mtext></maction></math>',
         "<math><mi>x</mi><mtext>y</mtext></math>"),
        ("<math><semantics><mi>x</mi><annotation-xml encoding=\"text/html\">"
         "<img src=x onerror=alert(1)></annotation-xml></semantics></math>",
         "<math><mi>x</mi></math>"),
        ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style>"
         "</mglyph></table></mtext></math>", "<math><mtext></mtext></math>"),
        ('<math><mstyle mathcolor="red;background:url(x)"><mi>x</mi></mstyle></math>',
         "<math><mstyle><mi>x</mi></mstyle></math>"),
        ('<math><mspace width="1em" height="javascript:1"></mspace></math>',
         '<math><mspace width="1em"></mspace></math>'),
        ('<math xlink:href="javascript:alert(1)" display="block"><mi>x</mi></math>',
         '<math display="block"><mi>x</mi></math>'),
        ("<svg><math><mi>x</mi></math></svg><script>alert(1)</script>", ""),
    ],
)  # fmt: skip
def test_the_mathml_allow_list(dirty: str, clean: str) -> None:
    assert sanitize_mathml(dirty) == clean


def test_the_allow_list_keeps_what_latex2mathml_writes_for_ordinary_math() -> None:
    from latex2mathml.converter import convert

    tex = (
        "\\left(\\frac{a}{b}\\right) + \\binom{n}{k} + \\hat{x} + \\overline{y} + \\mathbf{A}"
        " + \\begin{array}{|c|c|}a & b \\\\ \\hline c & d\\end{array} + \\xrightarrow{f}"
        " + \\color{red}{z} + \\hspace{1em} \\sqrt[3]{2} + \\cancel{q}"
    )
    mathml = convert(tex)
    kept = sanitize_mathml(mathml)
    for fragment in (
        'stretchy="true" fence="true" form="prefix"',
        'minsize="2.047em"',
        'mfrac linethickness="0"',
        'mover accent="true"',
        'columnlines="solid solid solid" rowlines="solid"',
        'mpadded width="+0.833em" lspace="0.556em" voffset="-.2em" height="-.2em"',
        'mstyle mathcolor="red"',
        'mspace width="1em"',
        "<mroot>",
        'menclose notation="updiagonalstrike"',
    ):
        assert fragment in kept, fragment
