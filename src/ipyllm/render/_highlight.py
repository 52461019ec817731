"""Syntax highlighting of fenced code with Pygments, and the CSS for its classes."""

from __future__ import annotations

from functools import lru_cache

from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# Every class Pygments' HTML formatter emits for standard token types; the sanitizer
# allows exactly these on <span> (non-standard token types lose their colour, nothing else).
PYGMENTS_CLASSES: frozenset[str] = frozenset(name for name in STANDARD_TYPES.values() if name)

# Languages that mean "no highlighting" in fence info strings.
_PLAIN_LANGUAGES = frozenset({"", "text", "plain", "plaintext", "txt", "output"})

_FORMATTER = HtmlFormatter(nowrap=True)


@lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    if language in _PLAIN_LANGUAGES:
        return None
    try:
        # stripnl/ensurenl off: the highlighted text must be exactly the fenced text.
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=8)  # a streamed code block asks again for the same lines every frame
def highlight_code(code: str, language: str) -> str:
    """HTML for the inside of ``<code>``: Pygments spans, or escaped text if unknown."""
    lexer = _lexer_for(language.strip().lower())
    if lexer is None:
        return escapeHtml(code)
    return highlight(code, lexer, _FORMATTER)


# Token classes grouped by the JupyterLab editor colour variable that fits them, so code
# follows the light or dark theme; the fallbacks are mid-tone colours readable on both.
_COLOUR_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("keyword", "#a155c9", ("k", "kc", "kd", "kn", "kp", "kr", "kt", "ow")),
    (
        "string",
        "#3f9a4a",
        ("s", "sa", "sb", "sc", "dl", "sd", "s2", "se", "sh", "si", "sx", "sr", "s1", "ss"),
    ),
    ("number", "#2f8fc0", ("m", "mb", "mf", "mh", "mi", "il", "mo")),
    ("comment", "#8a8a8a", ("c", "ch", "cm", "c1", "cs", "cpf")),
    ("def", "#2f7fd0", ("nf", "fm", "nc", "nn", "ne")),
    ("builtin", "#b5822b", ("nb", "bp")),
    ("operator", "#b0632e", ("o",)),
    ("meta", "#a0522d", ("nd", "cp")),
    ("tag", "#2e8b57", ("nt",)),
    ("attribute", "#c26a1d", ("na",)),
    ("variable-2", "#3572b0", ("nv", "vc", "vg", "vi", "vm")),
    ("header", "#3572b0", ("gh", "gu")),
    ("error", "#d33", ("err", "gr", "gt", "gd")),
)


def _pygments_css(scope: str) -> str:
    rules = []
    for variable, fallback, classes in _COLOUR_GROUPS:
        selector = ", ".join(f"{scope} .{name}" for name in classes)
        colour = f"var(--jp-mirror-editor-{variable}-color, {fallback})"
        rules.append(f"{selector} {{ color: {colour}; }}")
    rules.append(f"{scope} .gi {{ color: #3f9a4a; }}")
    rules.append(
        f"{scope} .c, {scope} .ch, {scope} .cm, {scope} .c1, {scope} .cs, "
        f"{scope} .ge {{ font-style: italic; }}"
    )
    rules.append(f"{scope} .gs, {scope} .gh, {scope} .gu {{ font-weight: bold; }}")
    return "\n".join(rules)


PYGMENTS_CSS: str = _pygments_css(".ipyllm-md pre.ipyllm-code")
