"""What "safe HTML" means in these tests: a checker shared by the renderer, view and browser tests.

It parses HTML the way a browser would and lists everything that could run code,
load something from elsewhere, or reach MathJax as a dangerous macro.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

HOSTILE_DIR = Path(__file__).parent / "corpus" / "hostile"
PAYLOADS = {
    path.name: path.read_text(encoding="utf-8") for path in sorted(HOSTILE_DIR.glob("*.md"))
}

FORBIDDEN_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "style",
    "form",
    "base",
    "meta",
    "link",
    "input",
    "button",
    "textarea",
    "frame",
    "frameset",
    "applet",
}
ALLOWED_ATTRIBUTES = {"href", "title", "src", "alt", "class", "target", "rel", "start"}
SAFE_SCHEMES = {"http", "https", "mailto"}
DANGEROUS_MACROS = re.compile(
    r"^(?:href|url|class|style|cssId|html[A-Za-z]*|unicode|require|data|mmlToken|bbox|toggle)$"
)
TEX_CONTROL_SEQUENCE = re.compile(r"\\(?:[A-Za-z]+|.)", re.DOTALL)
URL_NOISE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200d\ufeff]")  # browsers drop/strip these
VOID_TAGS = {"br", "hr", "img", "input", "wbr", "meta", "link", "base", "embed"}


class SafetyChecker(HTMLParser):
    """Collects violations, and the text MathJax would scan (not code, not ignored spans)."""

    def __init__(self, *, allow_images: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow_images = allow_images
        self.violations: list[str] = []
        self.mathjax_text: list[str] = []
        self._skipping: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS or (tag == "img" and not self.allow_images):
            self.violations.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name not in ALLOWED_ATTRIBUTES:
                self.violations.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src"):
                url = URL_NOISE.sub("", value or "")
                scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
                if not scheme or scheme.group(1).lower() not in SAFE_SCHEMES:
                    self.violations.append(f"{name}={value!r}")
        if tag not in VOID_TAGS:
            classes = (dict(attrs).get("class") or "").split()
            ignored = tag in ("pre", "code") or "mathjax_ignore" in classes
            self._skipping.append(ignored or bool(self._skipping and self._skipping[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID_TAGS and self._skipping:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not (self._skipping and self._skipping[-1]):
            self.mathjax_text.append(data)

    def check_mathjax_text(self) -> None:
        text = "".join(self.mathjax_text)
        for match in TEX_CONTROL_SEQUENCE.finditer(text):
            if DANGEROUS_MACROS.match(match.group()[1:]):
                self.violations.append(f"MathJax macro {match.group()}")


def violations(html: str, *, allow_images: bool = False) -> list[str]:
    checker = SafetyChecker(allow_images=allow_images)
    checker.feed(html)
    checker.close()
    checker.check_mathjax_text()
    return checker.violations


def assert_safe(html: str, *, allow_images: bool = False, context: str = "") -> None:
    found = violations(html, allow_images=allow_images)
    assert not found, f"{context}: {found}\n{html}"
