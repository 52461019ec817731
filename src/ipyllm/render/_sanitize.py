"""The HTML allow-list every piece of rendered model output passes through (nh3, or its
pure-Python stand-in where nh3 cannot load).

Widget HTML is assigned to ``innerHTML`` unsanitized and live outputs are trusted, so this is
the last line of defence against script in model output (see NOTES.md, "Security").
:func:`sanitize_mathml` is the separate, narrower allow-list of the MathML that the static
copy shows beside the TeX: presentation elements only, each attribute with its values checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Literal, Protocol

from ._highlight import PYGMENTS_CLASSES

Sanitizer = Literal["nh3", "fallback"]

#: The sanitizers that can clean here, the one used first: nh3 wherever it imports, and
#: always ``_sanitize_fallback`` (the same allow-list, written anew on ``html.parser``).
SANITIZERS: tuple[Sanitizer, ...]
try:
    import nh3
except ImportError:  # Pyodide (JupyterLite) has no nh3 offline: the pure-Python fallback
    SANITIZERS = ("fallback",)
else:
    SANITIZERS = ("nh3", "fallback")

SANITIZER: Sanitizer = SANITIZERS[0]


def sanitizer() -> Sanitizer:
    """The sanitizer that cleans now (the first of :data:`SANITIZERS`, unless switched)."""
    return SANITIZER


@contextmanager
def use_sanitizer(name: Sanitizer) -> Iterator[None]:
    """Clean with ``name``, one of :data:`SANITIZERS`, inside the block: to see what Pyodide
    shows, or to hold both to the same output. It switches for the whole process."""
    global SANITIZER
    if name not in SANITIZERS:
        raise ValueError(f"{name!r} cannot clean here; these can: {', '.join(SANITIZERS)}")
    before, SANITIZER = SANITIZER, name
    try:
        yield
    finally:
        SANITIZER = before


class _Cleaner(Protocol):
    def clean(self, html: str) -> str: ...


def _new_cleaner(backend: str, **options: Any) -> _Cleaner:
    if backend == "nh3":
        cleaner: _Cleaner = nh3.Cleaner(**options)
        return cleaner
    from ._sanitize_fallback import Cleaner

    return Cleaner(**options)


ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

#: The tags :func:`sanitize_html` keeps (and ``img`` where images are allowed).
ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "strong",
        "em",
        "del",
        "s",
        "code",
        "pre",
        "span",
        "div",
        "a",
        "ul",
        "ol",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)

_ALIGN_CLASSES = {"ipyllm-align-left", "ipyllm-align-center", "ipyllm-align-right"}
# MathJax (v2 and v3 names) skips elements with these classes: used for literal "$" and "\".
MATHJAX_IGNORE_CLASSES = "tex2jax_ignore mathjax_ignore"

_CLASSES: dict[str, set[str]] = {
    "span": {
        *PYGMENTS_CLASSES,
        *MATHJAX_IGNORE_CLASSES.split(),
        "ipyllm-math",
        "ipyllm-math-display",
        "ipyllm-task",
        "ipyllm-image-link",
    },
    "div": {"ipyllm-math", "ipyllm-math-display"},
    "pre": {"ipyllm-code", "ipyllm-math-pending"},
    "a": {"ipyllm-image-link"},
    "th": _ALIGN_CLASSES,
    "td": _ALIGN_CLASSES,
    "ul": {"contains-task-list"},
    "ol": {"contains-task-list"},
    "li": {"task-list-item"},
}


@cache
def _cleaner(allow_images: bool, backend: str = "nh3") -> _Cleaner:
    attributes: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
    tags = set(ALLOWED_TAGS)
    if allow_images:
        tags.add("img")
        attributes["img"] = {"src", "alt", "title"}
    return _new_cleaner(
        backend,
        tags=tags,
        attributes=attributes,
        allowed_classes=_CLASSES,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        url_relative="deny",  # a relative URL would point into the Jupyter server itself
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def sanitize_html(html: str, *, allow_images: bool = False) -> str:
    """Keep only the allow-listed tags, attributes, classes and URL schemes."""
    return _cleaner(allow_images, SANITIZER).clean(html)


# --------------------------------------------------------------------------- MathML

# The MathML presentation elements latex2mathml emits, and nothing else: no maction,
# semantics/annotation(-xml), mglyph or ms, no href, no class, id or style anywhere.
MATHML_TAGS = frozenset(
    {
        "math",
        "mrow",
        "mi",
        "mn",
        "mo",
        "mtext",
        "mspace",
        "msup",
        "msub",
        "msubsup",
        "mfrac",
        "msqrt",
        "mroot",
        "mstyle",
        "mpadded",
        "mphantom",
        "menclose",
        "mtable",
        "mtr",
        "mtd",
        "munder",
        "mover",
        "munderover",
    }
)

_BOOLEAN = re.compile(r"true|false")
# A MathML length: a number with a unit (or a pseudo-unit of mpadded), or a named space.
_LENGTH = re.compile(
    r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:em|ex|pt|px|pc|mm|cm|in|mu|%|width|height|depth)?"
    r"|(?:negative)?(?:very){0,2}(?:thin|thick|medium)mathspace"
)
_LENGTHS = re.compile(rf"(?:{_LENGTH.pattern})(?:\s+(?:{_LENGTH.pattern}))*")
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30}")
_MATHVARIANT = re.compile(
    r"normal|bold|italic|bold-italic|double-struck|bold-fraktur|script|bold-script|fraktur"
    r"|sans-serif|bold-sans-serif|sans-serif-italic|sans-serif-bold-italic|monospace"
)
_LINES = re.compile(r"(?:none|solid|dashed)(?:\s+(?:none|solid|dashed))*")
_ALIGNS = re.compile(r"(?:left|center|right)(?:\s+(?:left|center|right))*")
_NOTATION = re.compile(
    r"(?:box|roundedbox|circle|left|right|top|bottom|updiagonalstrike|downdiagonalstrike"
    r"|verticalstrike|horizontalstrike|longdiv|actuarial|madruwb)"
    r"(?:\s+(?:box|roundedbox|circle|left|right|top|bottom|updiagonalstrike"
    r"|downdiagonalstrike|verticalstrike|horizontalstrike|longdiv|actuarial|madruwb))*"
)
_OPERATOR_FLAGS = ("accent", "fence", "largeop", "movablelimits", "separator", "stretchy")

# Each allowed attribute with the whole value it must match (anything else is dropped).
_MATHML_ATTRIBUTES: dict[str, dict[str, re.Pattern[str]]] = {
    "math": {"display": re.compile(r"inline|block")},
    "mi": {"mathvariant": _MATHVARIANT},
    "mn": {"mathvariant": _MATHVARIANT},
    "mtext": {"mathvariant": _MATHVARIANT},
    "mo": {
        "mathvariant": _MATHVARIANT,
        "form": re.compile(r"prefix|infix|postfix"),
        **{name: _BOOLEAN for name in _OPERATOR_FLAGS},
        **{name: _LENGTH for name in ("lspace", "rspace", "minsize", "maxsize")},
    },
    "mover": {"accent": _BOOLEAN},
    "munder": {"accentunder": _BOOLEAN},
    "munderover": {"accent": _BOOLEAN, "accentunder": _BOOLEAN},
    "mfrac": {"linethickness": _LENGTH},
    "mspace": {
        **{name: _LENGTH for name in ("width", "height", "depth")},
        "linebreak": re.compile(r"newline|auto|nobreak|goodbreak|badbreak"),
        "mathbackground": _COLOR,
    },
    "mpadded": {name: _LENGTH for name in ("width", "height", "depth", "lspace", "voffset")},
    "mstyle": {
        "displaystyle": _BOOLEAN,
        "scriptlevel": re.compile(r"[+-]?\d{1,2}"),
        "mathsize": _LENGTH,
        "mathcolor": _COLOR,
        "mathbackground": _COLOR,
    },
    "menclose": {"notation": _NOTATION},
    "mtable": {
        "displaystyle": _BOOLEAN,
        "columnlines": _LINES,
        "rowlines": _LINES,
        "columnspacing": _LENGTHS,
        "rowspacing": _LENGTHS,
        "columnalign": _ALIGNS,
    },
    "mtd": {"columnalign": _ALIGNS},
}


def _mathml_attribute(element: str, attribute: str, value: str) -> str | None:
    pattern = _MATHML_ATTRIBUTES.get(element, {}).get(attribute)
    value = value.strip()
    return value if pattern is not None and pattern.fullmatch(value) else None


@cache
def _mathml_cleaner(backend: str = "nh3") -> _Cleaner:
    return _new_cleaner(
        backend,
        tags=set(MATHML_TAGS),
        attributes={tag: set(names) for tag, names in _MATHML_ATTRIBUTES.items()},
        attribute_filter=_mathml_attribute,
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )


def sanitize_mathml(markup: str) -> str:
    """Keep only MathML presentation elements, and their attributes with checked values.

    Meant for MathML made from model-written TeX (by latex2mathml, which passes ``\\text``
    through unescaped): HTML, links, classes, styles and event handlers never survive.
    """
    return _mathml_cleaner(SANITIZER).clean(markup)
