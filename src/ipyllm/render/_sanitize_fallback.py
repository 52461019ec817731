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

import html
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from html.parser import HTMLParser
from typing import Any

AttributeFilter = Callable[[str, str, str], "str | None"]

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

_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "action", "formaction", "poster", "data"})
_COMMENT_END = re.compile(r"--!?>")
_SCRIPT_END = re.compile(r"</script[\t\n\f />]", re.IGNORECASE)
_SCRIPT_TOKENS = re.compile(r"<!--|-->|</script[\t\n\f />]|<script[\t\n\f />]", re.I)


def _script_end(markup: str, start: int) -> int | None:
    """Where the ``</script`` that ends a script's content is (the WHATWG script data
    states: ``<!--`` escapes, ``<script`` inside it escapes twice), or None: at the end."""
    state = "data"
    for match in _SCRIPT_TOKENS.finditer(markup, start):
        token = match.group().lower()
        if state == "data":
            if token.startswith("</script"):
                return match.start()
            if token == "<!--" and not markup.startswith((">", "->"), match.end()):
                state = "escaped"
        elif state == "escaped":
            if token == "-->":
                state = "data"
            elif token.startswith("</script"):
                return match.start()
            elif token.startswith("<script"):
                state = "double"
        elif token == "-->":
            state = "data"
        elif token.startswith("</script"):
            state = "escaped"
    return None


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_USERINFO = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:%-]*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_DECIMAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace("<", "&lt;")
        .replace(">", "&gt;")
    )  # fmt: skip


def _escape_attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")
        .replace("<", "&lt;").replace(">", "&gt;")
    )  # fmt: skip


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
        writer = _Writer(self, markup)
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
            out.append(f' {name}="{_escape_attribute(value)}"')
        for name, value in forced.items():
            out.append(f' {name}="{_escape_attribute(value)}"')
        if tag == "a" and self.link_rel is not None:
            out.append(f' rel="{_escape_attribute(self.link_rel)}"')
        return "".join(out)

    def _url_passes(self, name: str, value: str) -> bool:
        if name not in _URL_ATTRIBUTES:
            return True
        return url_allowed(value, self.url_schemes, self.url_relative)


class _AnyName(frozenset[str]):
    def __contains__(self, item: object) -> bool:
        return True


#: Every HTML element counts, as a boundary for :func:`_bounds`.
HTML_NAMESPACE = _AnyName()
SVG_HTML_POINTS = frozenset({"foreignobject", "desc", "title"})


def _bounds(frame: _Frame, html_boundary: frozenset[str]) -> bool:
    """Whether ``frame`` stops a search of the open elements (MathML and SVG elements where
    HTML comes back always do)."""
    if frame.namespace == "html":
        return frame.name in html_boundary
    if frame.namespace == "mathml":
        return frame.name in MATHML_TEXT_POINTS or frame.name == "annotation-xml"
    return frame.name in SVG_HTML_POINTS


class _Frame:
    """An open element: its name, namespace, and whether it is written or dropped."""

    __slots__ = ("drop", "name", "namespace", "written")

    def __init__(self, name: str, namespace: str, written: bool, drop: bool) -> None:
        self.name = name
        self.namespace = namespace
        self.written = written  # its tags are in the output
        self.drop = drop  # it and everything inside are left out


class _Writer(HTMLParser):
    def __init__(self, cleaner: Cleaner, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.cleaner = cleaner
        self.markup = markup
        self.base = 0  # where in ``markup`` the text being fed starts
        self.skip_rest = False  # ignore the rest of the text being fed...
        self.resume_at: int | None = None  # ...and go on from here (None: it was all read)
        self.foreign_start = False  # the start tag being read is MathML or SVG
        self.out: list[str] = []
        self.stack: list[_Frame] = []
        self.dropping = 0  # how many open frames drop their content
        self.after_pre = False  # the next character follows <pre>: a newline there is dropped
        self.raw: str | None = None  # the raw-text element being read, if any

    def result(self) -> str:
        while self.stack:
            self._pop()
        return "".join(self.out)

    # -- tree ----------------------------------------------------------------------------
    def _namespace(self, tag: str) -> str:
        parent = self.stack[-1] if self.stack else None
        if parent is None or parent.namespace == "html":
            return "mathml" if tag == "math" else "svg" if tag == "svg" else "html"
        if (
            parent.namespace == "mathml"
            and parent.name in MATHML_TEXT_POINTS
            and tag not in ("mglyph", "malignmark")
        ) or (parent.namespace == "svg" and parent.name in SVG_HTML_POINTS):
            return "mathml" if tag == "math" else "svg" if tag == "svg" else "html"
        return parent.namespace

    def _push(self, tag: str, namespace: str, written: bool, drop: bool) -> None:
        self.stack.append(_Frame(tag, namespace, written, drop))
        if drop:
            self.dropping += 1

    def _pop(self) -> None:
        frame = self.stack.pop()
        if frame.drop:
            self.dropping -= 1
        if frame.written:
            self.out.append(f"</{frame.name}>")

    def _pop_to(self, index: int) -> None:
        while len(self.stack) > index:
            self._pop()

    def _close(self, tag: str, boundary: frozenset[str] = SCOPE) -> None:
        """Close an open ``tag`` if there is one before a boundary of its scope."""
        for index in range(len(self.stack) - 1, -1, -1):
            frame = self.stack[index]
            if frame.name == tag and frame.namespace == "html":
                while len(self.stack) > index:
                    self._pop()
                return
            if frame.name in boundary or frame.namespace != "html":
                return

    @property
    def in_select(self) -> bool:
        return any(frame.name == "select" for frame in self.stack)

    def _in_table(self) -> bool:
        for frame in reversed(self.stack):
            if frame.name == "table" and frame.namespace == "html":
                return True
            if frame.namespace != "html" or frame.name in ("template",):
                return False
        return False

    def _implied_end_tags(self, tag: str) -> None:
        if not self.stack or self.stack[-1].namespace != "html":
            return
        if tag in CLOSES_P:
            self._close("p")
        if tag == "table" and self.stack and self.stack[-1].name in TABLE_MODE:
            self._close("table", frozenset({"html", "template"}))  # a table in a table ends it
        if tag == "li":
            self._close("li", LI_BOUNDARY)
        elif tag in ("dd", "dt"):
            self._close("dd", DD_BOUNDARY)
            self._close("dt", DD_BOUNDARY)
        elif tag in HEADINGS and self.stack and self.stack[-1].name in HEADINGS:
            self._pop()
        elif tag in ("td", "th"):
            self._close("td", frozenset({"table", "tr"}))
            self._close("th", frozenset({"table", "tr"}))
        elif tag == "tr":
            self._close("td", frozenset({"table"}))
            self._close("th", frozenset({"table"}))
            self._close("tr", frozenset({"table", "thead", "tbody", "tfoot"}))
        elif tag in ("thead", "tbody", "tfoot"):
            for part in ("td", "th", "tr", "thead", "tbody", "tfoot"):
                self._close(part, frozenset({"table"}))

    def _implied_table_parts(self, tag: str) -> None:
        """A row straight in a table gets its ``<tbody>``, a cell its ``<tr>``, as in browsers."""
        top = self.stack[-1].name if self.stack else ""
        if top == "table" and tag in ("tr", "td", "th"):
            self._open_implied("tbody")
            top = "tbody"
        if top in ("thead", "tbody", "tfoot") and tag in ("td", "th"):
            self._open_implied("tr")

    def _open_implied(self, tag: str) -> None:
        written = tag in self.cleaner.tags and not self.dropping
        if written:
            self.out.append(f"<{tag}>")
        self._push(tag, "html", written, drop=False)

    # -- tokens --------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        if self.skip_rest:
            return
        self.after_pre = False
        cleaner = self.cleaner
        namespace = self._namespace(tag)
        self.foreign_start = namespace != "html"
        if namespace != "html" and tag in BREAKOUT and tag != "math":
            # An HTML tag inside MathML or SVG closes them (outside a text integration point).
            while self.stack and not _bounds(self.stack[-1], HTML_NAMESPACE):
                self._pop()
            namespace = "html"
        self.foreign_start = namespace != "html"
        if namespace == "html":
            self._implied_end_tags(tag)
            if tag in TABLE_PARTS and not self._in_table():
                return  # a table part outside a table is ignored, as browsers do
            self._implied_table_parts(tag)
        void = tag in VOID and namespace == "html"
        if namespace == "svg" or (namespace == "mathml" and not cleaner.mathml):
            drop, written = True, False  # no SVG ever; MathML only where it is allowed
        elif namespace == "mathml":
            known = tag in MATHML_NAMES
            drop, written = not known, known and tag in cleaner.tags
        else:
            foreign_name = tag in MATHML_NAMES and tag not in HTML_NAMES_TOO
            drop = foreign_name or tag in cleaner.clean_content or tag == "template"
            written = not drop and tag in cleaner.tags
        if self.in_select:
            written = False  # browsers drop almost every tag inside <select>; here, all
        if written and not self.dropping:
            self.out.append(f"<{tag}{cleaner.attributes_of(tag, attrs)}>")
        if void or (self_closing and namespace != "html"):
            if written and not self.dropping and not void:
                self.out.append(f"</{tag}>")
            return
        if namespace == "html" and tag in RCDATA | RAWTEXT:
            self.set_cdata_mode(tag)
            self.raw = tag
        self._push(tag, namespace, written and not self.dropping, drop)
        if tag == "plaintext" and namespace == "html":
            # Browsers read everything after <plaintext> as text, to the end of the input.
            rest = self.markup[self._tag_end() :]
            self.handle_data(rest)
            self.skip_rest = True
            return
        if tag == "script" and namespace == "html":
            self._find_script_end()
        if namespace == "html" and tag in ("pre", "listing", "textarea"):
            self.after_pre = True

    def set_cdata_mode(self, *args: Any, **kwargs: Any) -> None:
        # html.parser reads <script> and <style> as raw text wherever they are; inside MathML
        # or SVG browsers read markup in them.
        if self.foreign_start:
            return
        super().set_cdata_mode(*args, **kwargs)

    def run(self) -> None:
        """Read the markup, resuming where a script's real end needed it (see below)."""
        while True:
            self.skip_rest, self.resume_at = False, None
            self.feed(self.markup[self.base :])
            if self.resume_at is None:
                break
            HTMLParser.reset(self)
            self.base = self.resume_at
        if not self.skip_rest:
            self.finish()

    def _tag_end(self) -> int:
        """Where the start tag being handled ends, in ``markup``."""
        line, column = self.getpos()
        fed = self.markup[self.base :]
        start = sum(len(text) + 1 for text in fed.split("\n")[: line - 1]) + column
        return self.base + start + len(self.get_starttag_text() or "")

    def _find_script_end(self) -> None:
        """A script's content ends at its ``</script>``, except inside ``<!--`` where
        browsers follow escape rules (html.parser does not): then go on from the real end."""
        start = self._tag_end()
        simple = _SCRIPT_END.search(self.markup, start)
        if "<!--" not in self.markup[start : simple.start() if simple else None]:
            return
        end = _script_end(self.markup, start)
        self.skip_rest = True
        self.resume_at = len(self.markup) if end is None else end

    def handle_endtag(self, tag: str) -> None:
        if self.skip_rest:
            return
        self.after_pre = False
        self.raw = None
        writes = not self.dropping and tag in self.cleaner.tags
        if tag == "br":
            if writes:
                self.out.append("<br>")  # </br> is read as <br>
            return
        # Inside MathML or SVG, an end tag closes the nearest foreign element of its name.
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].namespace == "html":
                break
            if self.stack[index].name == tag:
                self._pop_to(index)
                return
        # Else it closes the nearest open element of its name, unless an element that bounds
        # it comes first (then the end tag is ignored, as browsers do).
        boundary = SCOPE if tag in SPECIAL else SPECIAL
        for index in range(len(self.stack) - 1, -1, -1):
            frame = self.stack[index]
            if frame.name == tag and frame.namespace == "html":
                self._pop_to(index)
                return
            if _bounds(frame, boundary):
                break
        if tag == "p" and writes:
            self.out.append("<p></p>")  # </p> with no open <p> is read as <p></p>

    def handle_data(self, data: str) -> None:
        if self.skip_rest:
            return
        if self.raw in RCDATA:
            data = html.unescape(data)
        if self.after_pre:
            self.after_pre = False
            if data.startswith("\n"):
                data = data[1:]
        if self.dropping or not data:
            return
        self.out.append(_escape_text(data.replace("\x00", "")))

    def finish(self) -> None:
        """The end of the input, read as browsers do.

        A tag, comment or declaration cut off by the end is dropped whole (a browser never
        builds it), not shown as text; the unfinished content of a raw-text element is text.
        """
        rest = self.rawdata
        if rest.startswith("<") and rest not in ("<", "</") and self.cdata_elem is None:
            self.rawdata = ""
        self.close()

    def parse_html_declaration(self, i: int) -> int:
        """``<![CDATA[...]]>`` is text inside MathML or SVG; elsewhere, as any ``<![``, a
        comment up to the first ``>`` (html.parser reads a marked section to ``]]>``)."""
        rawdata = self.rawdata
        if not rawdata.startswith("<![", i):
            return super().parse_html_declaration(i)
        self.after_pre = False
        if rawdata.startswith("<![CDATA[", i) and self.stack and self.stack[-1].namespace != "html":
            end = rawdata.find("]]>", i + 9)
            self.handle_data(rawdata[i + 9 : end if end >= 0 else len(rawdata)])
            return end + 3 if end >= 0 else len(rawdata)
        end = rawdata.find(">", i + 3)
        return end + 1 if end >= 0 else len(rawdata)

    def parse_comment(self, i: int, report: bool = True) -> int:
        """A comment ends at ``-->`` or ``--!>`` (``<!-->`` is empty), or runs to the end."""
        start = i + 4
        if self.rawdata.startswith(">", start):
            return start + 1
        if self.rawdata.startswith("->", start):
            return start + 2
        match = _COMMENT_END.search(self.rawdata, start)
        self.after_pre = False
        return len(self.rawdata) if match is None else match.end()

    # Comments, doctypes, processing instructions and CDATA sections are never written.
    def handle_comment(self, data: str) -> None:
        self.after_pre = False

    def handle_decl(self, decl: str) -> None:
        self.after_pre = False

    def handle_pi(self, data: str) -> None:
        self.after_pre = False

    def unknown_decl(self, data: str) -> None:
        self.after_pre = False
