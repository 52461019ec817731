"""The HTML allow-list every piece of rendered model output passes through (nh3).

Widget HTML is assigned to ``innerHTML`` unsanitized and live outputs are trusted, so this is
the last line of defence against script in model output (see NOTES.md, "Security").
"""

from __future__ import annotations

from functools import cache

import nh3

from ._highlight import PYGMENTS_CLASSES

ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

_TAGS = frozenset(
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
def _cleaner(allow_images: bool) -> nh3.Cleaner:
    attributes: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
    tags = set(_TAGS)
    if allow_images:
        tags.add("img")
        attributes["img"] = {"src", "alt", "title"}
    return nh3.Cleaner(
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
    return _cleaner(allow_images).clean(html)
