"""A pure-Python stand-in for nh3's ``Cleaner``, where nh3 cannot load (Pyodide, JupyterLite).

It takes the same allow-list arguments as ``nh3.Cleaner`` (``_sanitize`` passes both the same
ones) and is built to be safe first: the input is tokenized by the standard library's
``html.parser`` and the output is *written anew* from the tokens. Only allow-listed tags are
written, each with only its allowed attributes (first occurrence wins), allowed classes and
checked URLs, attribute values double-quoted and escaped, all text escaped, every element
closed; comments, doctypes, processing instructions and CDATA are dropped. Whatever the
tokenizer makes of odd input, a browser parsing the output finds exactly those elements and
attributes, so no tokenizer difference can smuggle a tag or an event handler through.

It also follows nh3 (ammonia on html5ever) closely enough that the HTML ipyllm's renderer
makes comes out byte for byte the same: the same serialization (``&nbsp;``, ``&lt;`` and
``&gt;`` in attributes), ``target``/``rel`` appended to links, an empty ``class=""`` kept,
the first newline after ``<pre>`` dropped, ``<script>``/``<style>`` removed with their
content and the raw-text elements' content kept as text. Where html5ever builds a tree the
browser's way (implied end tags, table fix-ups, foreign content), it follows the common
cases and is otherwise stricter: ``<svg>`` and ``<math>`` are dropped whole where MathML is
not allowed, and URLs pass only when they are plainly valid (``http(s)://`` with a plain
host name or IPv4 address, ``mailto:``); ``http:example.com`` or a percent-encoded host keep
their text but lose the link.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

AttributeFilter = Callable[[str, str, str], "str | None"]

# -- what the HTML standard says of elements (the tree builder in ``_sanitize_tree`` reads it)

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
     "param", "source", "track", "wbr", "basefont", "bgsound", "frame"}
)  # fmt: skip
# html5ever reads these as text up to their end tag (RCDATA decodes entities, RAWTEXT not).
RCDATA = frozenset({"textarea", "title"})
RAWTEXT = frozenset({"xmp", "iframe", "noembed", "noframes", "noscript", "style", "script"})
# In MathML, children of these are HTML again (text integration points).
MATHML_TEXT_POINTS = frozenset({"mi", "mo", "mn", "ms", "mtext"})
# An HTML start tag like these inside MathML leaves the MathML (html5ever's "break out").
BREAKOUT = frozenset(
    {"b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
     "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing",
     "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong",
     "strike", "sub", "sup", "table", "tt", "u", "ul", "var"}
)  # fmt: skip
# MathML element names: an HTML element by one of these names is dropped whole (as ammonia
# does: it could only have come from markup meant to confuse a parser).
MATHML_NAMES = frozenset(
    {"math", "maction", "annotation", "annotation-xml", "menclose", "merror", "mfenced",
     "mfrac", "mglyph", "mi", "mlabeledtr", "mmultiscripts", "mn", "mo", "mover", "mpadded",
     "mphantom", "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub",
     "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "none",
     "semantics", "malignmark", "maligngroup", "mlongdiv", "mscarries", "mscarry", "msgroup",
     "msline", "msrow", "mstack"}
)  # fmt: skip
HTML_NAMES_TOO = frozenset({"title", "style", "font", "a", "script", "span"})
# An open <p> is closed by these start tags (html5ever: "close a p element").
CLOSES_P = frozenset(
    {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
     "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu",
     "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5",
     "h6", "pre", "listing", "form", "table", "hr", "xmp", "plaintext", "dd", "dt", "li"}
)  # fmt: skip
# Open elements under which browsers read in "table" mode (not in a cell or a caption).
TABLE_MODE = frozenset({"table", "tbody", "thead", "tfoot", "tr"})
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Elements that bound the search for an open <p>/<li> (the "scope" of html5ever, roughly).
SCOPE = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
     "button", "math", "svg"} | MATHML_TEXT_POINTS
)  # fmt: skip
TABLE_PARTS = frozenset({"thead", "tbody", "tfoot", "tr", "td", "th", "caption", "col"})
# html5ever's "special" elements: a search for an open element to close stops at them.
SPECIAL = frozenset(
    {"address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
     "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
     "details", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure",
     "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
     "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link",
     "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript",
     "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section",
     "select", "source", "style", "summary", "table", "tbody", "td", "template", "textarea",
     "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp"}
)  # fmt: skip
LI_BOUNDARY = SPECIAL - {"address", "div", "p", "li"}
DD_BOUNDARY = SPECIAL - {"address", "div", "p", "dd", "dt"}


def escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace("<", "&lt;")
        .replace(">", "&gt;")
    )  # fmt: skip


def escape_attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")
        .replace("<", "&lt;").replace(">", "&gt;")
    )  # fmt: skip


# -- the policy ------------------------------------------------------------------------------


_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "action", "formaction", "poster", "data"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_USERINFO = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:%-]*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_DECIMAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


def _valid_host(host: str) -> bool:
    """A plain DNS name (ASCII, or valid punycode labels) or a dotted-decimal IPv4 address."""
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        if "%" in inner:
            return False
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            return False
        return True
    labels = host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]  # one trailing dot is allowed
    if not labels or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # the WHATWG parser takes it for an IPv4 address
        return len(labels) == 4 and all(
            _DECIMAL_OCTET.fullmatch(label) and int(label) <= 255 for label in labels
        )
    for label in labels:
        if label[:4].lower() == "xn--":
            try:
                decoded = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                return False
            if not decoded or not all(c.isalnum() or c == "-" for c in decoded):
                return False
    return True


def url_allowed(value: str, schemes: Iterable[str], relative: bool = False) -> bool:
    """Whether a link target passes: an allowed scheme and a plainly valid URL.

    Browsers (and the ``url`` crate nh3 uses) drop leading and trailing control characters
    and spaces and remove tabs and newlines anywhere, so the check runs on what they see.
    """
    url = value.strip("".join(chr(c) for c in range(0x21)))
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME.match(url)
    if match is None:
        return relative and not url.startswith(("//", "\\\\", "/\\", "\\/"))
    scheme = match.group(1).lower()
    if scheme not in {s.lower() for s in schemes}:
        return False
    rest = url[match.end() :]
    if scheme in ("http", "https", "ws", "wss", "ftp"):
        if not rest.startswith("//"):
            return False
        authority = re.split(r"[/?#\\]", rest[2:], maxsplit=1)[0]
        userinfo, _, hostport = authority.rpartition("@")
        if userinfo and not _USERINFO.fullmatch(userinfo):
            return False
        host, port = hostport, ""
        if not hostport.endswith("]") and ":" in hostport:
            host, _, port = hostport.rpartition(":")
        if port and not (port.isdigit() and port.isascii() and int(port) <= 65535):
            return False
        return bool(host) and _valid_host(host)
    if scheme == "file":
        return False  # never in an allow-list of ipyllm's; not checked here
    return not rest.startswith("//")  # mailto: and the like, without an authority


class Cleaner:
    """The allow-list, as ``nh3.Cleaner`` takes it (the arguments ipyllm uses)."""

    def __init__(
        self,
        *,
        tags: Iterable[str],
        attributes: Mapping[str, Iterable[str]] | None = None,
        allowed_classes: Mapping[str, Iterable[str]] | None = None,
        url_schemes: Iterable[str] = ("http", "https", "mailto"),
        url_relative: str = "deny",
        link_rel: str | None = "noopener noreferrer",
        set_tag_attribute_values: Mapping[str, Mapping[str, str]] | None = None,
        attribute_filter: AttributeFilter | None = None,
        strip_comments: bool = True,
        clean_content_tags: Iterable[str] = ("script", "style"),
    ) -> None:
        if url_relative not in ("deny", "passthrough"):
            raise ValueError(f"url_relative={url_relative!r} is not supported here")
        if not strip_comments:
            raise ValueError("comments are always stripped here")
        self.tags = frozenset(tags)
        self.attributes = {tag: frozenset(names) for tag, names in (attributes or {}).items()}
        self.classes = {tag: frozenset(names) for tag, names in (allowed_classes or {}).items()}
        self.url_schemes = frozenset(url_schemes)
        self.url_relative = url_relative == "passthrough"
        self.link_rel = link_rel
        forced = set_tag_attribute_values or {}
        self.set_values = {tag: dict(values) for tag, values in forced.items()}
        self.attribute_filter = attribute_filter
        self.clean_content = frozenset(clean_content_tags)
        self.mathml = bool(self.tags & (MATHML_NAMES - HTML_NAMES_TOO))

    def clean(self, markup: str) -> str:
        # The input stream's preprocessing: newlines normalized; a NUL, which browsers drop
        # from text but keep in names as U+FFFD, is U+FFFD everywhere.
        markup = markup.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
        from ._sanitize_tree import Writer

        writer = Writer(self, markup)
        writer.run()
        return writer.result()

    def attributes_of(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        """The attributes kept on an allowed ``tag``, written out (with a leading space)."""
        allowed = self.attributes.get(tag, frozenset())
        classes = self.classes.get(tag)
        forced = self.set_values.get(tag, {})
        seen: set[str] = set()
        out = []
        for name, raw in attrs:
            if name in seen:
                continue  # the first of a repeated attribute counts, as in browsers
            seen.add(name)
            value = (raw or "").replace("\x00", "\ufffd")
            if name in forced or (name == "rel" and tag == "a" and self.link_rel is not None):
                continue
            if name == "class" and classes is not None:
                value = " ".join(c for c in value.split() if c in classes)
            elif name not in allowed or not self._url_passes(name, value):
                continue
            if self.attribute_filter is not None:
                filtered = self.attribute_filter(tag, name, value)
                if filtered is None:
                    continue
                value = filtered
            out.append(f' {name}="{escape_attribute(value)}"')
        for name, value in forced.items():
            out.append(f' {name}="{escape_attribute(value)}"')
        if tag == "a" and self.link_rel is not None:
            out.append(f' rel="{escape_attribute(self.link_rel)}"')
        return "".join(out)

    def _url_passes(self, name: str, value: str) -> bool:
        if name not in _URL_ATTRIBUTES:
            return True
        return url_allowed(value, self.url_schemes, self.url_relative)
