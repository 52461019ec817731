"""The tree building half of the pure-Python sanitizer: html.parser's tokens, read as a browser
(html5ever, which nh3 uses) builds its tree, written out anew through a ``Cleaner``'s policy.

Only the parts of the HTML standard's tree construction that decide which element ends up
where are followed: implied end tags (``<p>``, ``<li>``, headings, table parts), tables,
raw-text and RCDATA elements, ``<plaintext>``, the script data escape states, comments as
browsers end them, MathML and SVG (namespaces, text integration points, the HTML tags that
leave them), and the end of the input. Everything else keeps html.parser's reading, which can
only make the output stricter: whatever is written is an allowed tag with checked attributes.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from ._sanitize_fallback import (
    BREAKOUT,
    CLOSES_P,
    DD_BOUNDARY,
    HEADINGS,
    HTML_NAMES_TOO,
    LI_BOUNDARY,
    MATHML_NAMES,
    MATHML_TEXT_POINTS,
    RAWTEXT,
    RCDATA,
    SCOPE,
    SPECIAL,
    TABLE_MODE,
    TABLE_PARTS,
    VOID,
    escape_text,
)

if TYPE_CHECKING:
    from ._sanitize_fallback import Cleaner

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


_IGNORED = frozenset({"html", "body", "head", "frameset"})
_TABLE = frozenset({"table", "template"})  # where a search for an open table part stops


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


class Writer(HTMLParser):
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
            self._close("td", frozenset({"table", "tr", "template"}))
            self._close("th", frozenset({"table", "tr", "template"}))
        elif tag == "tr":
            self._close("td", _TABLE)
            self._close("th", _TABLE)
            self._close("tr", frozenset({"table", "thead", "tbody", "tfoot", "template"}))
        elif tag in ("thead", "tbody", "tfoot"):
            for part in ("td", "th", "tr", "thead", "tbody", "tfoot"):
                self._close(part, _TABLE)

    def _implied_table_parts(self, tag: str) -> None:
        """A row straight in a table gets its ``<tbody>``, a cell its ``<tr>``, as in browsers."""
        top = self.stack[-1].name if self.stack else ""
        if top == "table" and tag in ("tr", "td", "th"):
            self._open_implied("tbody")
            top = "tbody"
        if top in ("thead", "tbody", "tfoot") and tag in ("td", "th"):
            self._open_implied("tr")

    def _open_implied(self, tag: str) -> None:
        written = tag in self.cleaner.tags and not self.dropping and not self.in_select
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
            if tag in _IGNORED:
                return  # inside a page's body, browsers ignore these tags (not their content)
            if tag == "image":
                tag = "img"  # browsers read <image> as <img>
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
        if tag in ("p", "br") and self.stack and self.stack[-1].namespace != "html":
            # </p> and </br> leave MathML and SVG, as an HTML start tag does.
            while self.stack and not _bounds(self.stack[-1], HTML_NAMESPACE):
                self._pop()
        if tag in _IGNORED:
            return  # browsers keep every element open at </body> and </html>
        if tag == "form":  # </form> takes the form element out, leaving what is inside open
            for index in range(len(self.stack) - 1, -1, -1):
                frame = self.stack[index]
                if frame.name == "form" and not frame.written and not frame.drop:
                    del self.stack[index]
                    return
                if _bounds(frame, SCOPE):
                    return
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
        self.out.append(escape_text(data.replace("\x00", "")))

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

    handle_pi = unknown_decl = handle_comment
