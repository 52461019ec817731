"""The Markdown parser and its render rules: Markdown text to sanitized HTML in one go.

markdown-it-py with ``html=False`` (raw HTML in model output stays text), GFM tables,
strikethrough, task lists, bare-URL autolinks and math (``_math``); render rules for Pygments
code, table alignment as classes, MathJax-ready math and images as links; then the nh3
allow-list of ``_sanitize``. ``_streaming`` renders through the same parser, block by block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.tasklists import tasklists_plugin

from ._highlight import highlight_code
from ._math import math_html, math_plugin, prose_html
from ._sanitize import sanitize_html

_gfm_autolink_plugin: Callable[[MarkdownIt], None] | None
try:
    from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin as _gfm_autolink_plugin
except ImportError:  # mdit-py-plugins < 0.5: bare URLs stay text
    _gfm_autolink_plugin = None

__all__ = ["STREAMING", "normalize", "parser", "render_markdown", "render_tokens"]

# --------------------------------------------------------------------------- render rules

RenderRule = Callable[[RendererHTML, Sequence[Token], int, OptionsDict, EnvType], str]

_WEB_URL = re.compile(r"https?:", re.IGNORECASE)
_LINK_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
STREAMING = "ipyllm_streaming"  # env key: rendering the live tail of a stream


def _render_text(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return prose_html(tokens[idx].content)


def _render_math_inline(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return math_html(tokens[idx].content, display=False)


def _render_math_inline_display(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return math_html(tokens[idx].content, display=True)


def _render_math_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if env.get(STREAMING) and token.meta.get("unterminated"):
        # Half-typed display math: show the source until it closes instead of letting
        # MathJax flash errors on incomplete TeX (pre is never typeset).
        source = escapeHtml(token.markup + token.content)
        return f'<pre class="ipyllm-math-pending">{source}</pre>\n'
    return math_html(token.content, display=True, block=True)


def _render_fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).split(maxsplit=1)
    language = info[0] if info else ""
    if env.get(STREAMING):
        # The live tail is re-rendered every frame: highlight only its complete lines, which
        # highlight_code caches, and append the line being typed as plain text.
        split = token.content.rfind("\n") + 1
        code = highlight_code(token.content[:split], language) + escapeHtml(token.content[split:])
    else:
        code = highlight_code(token.content, language)
    return f'<pre class="ipyllm-code"><code>{code}</code></pre>\n'


def _render_cell_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # nh3 strips style attributes, so alignment travels as a class.
    token = tokens[idx]
    style = token.attrs.pop("style", None)
    if isinstance(style, str) and style.startswith("text-align:"):
        token.attrSet("class", "ipyllm-align-" + style.removeprefix("text-align:"))
    return self.renderToken(tokens, idx, options, env)


def _render_link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    href = tokens[idx].attrGet("href")
    if isinstance(href, str) and _LINK_URL.match(href):
        return self.renderToken(tokens, idx, options, env)
    # Any other scheme, or a relative URL (which would point into the Jupyter server):
    # keep the text, drop the link.
    closing = next(t for t in tokens[idx + 1 :] if t.type == "link_close")
    closing.tag = "span"
    return "<span>"


def _render_task_checkbox(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # With html=False the only html_inline tokens are the tasklists plugin's checkboxes;
    # a character needs no <input> in the allow-list.
    content = tokens[idx].content
    if "task-list-item-checkbox" not in content:
        return escapeHtml(content)
    mark = "☑" if 'checked="checked"' in content else "☐"
    return f'<span class="ipyllm-task">{mark}</span>'


def _image_rule(allow_images: bool) -> RenderRule:
    def render_image(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        src = token.attrGet("src")
        src = src if isinstance(src, str) and _WEB_URL.match(src) else ""
        alt = self.renderInlineAsText(token.children, options, env)
        if allow_images and src:
            return f'<img src="{escapeHtml(src)}" alt="{escapeHtml(alt)}">'
        # Images off: remote images leak data on load, so show a link the user can choose.
        label = prose_html(f"🖼 {alt}".rstrip())
        if src:
            return f'<a class="ipyllm-image-link" href="{escapeHtml(src)}">{label}</a>'
        return f'<span class="ipyllm-image-link">{label}</span>'

    return render_image


# --------------------------------------------------------------------------- parser


@cache
def parser(allow_images: bool) -> MarkdownIt:
    """The shared parser; one per ``allow_images``, since the image rule depends on it."""
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.use(math_plugin)
    if _gfm_autolink_plugin is not None and hasattr(md.inline, "add_terminator_char"):
        md.use(_gfm_autolink_plugin)  # needs markdown-it-py >= 4.1
    rules: dict[str, RenderRule] = {
        "text": _render_text,
        "math_inline": _render_math_inline,
        "math_inline_double": _render_math_inline_display,
        "math_block": _render_math_block,
        "fence": _render_fence,
        "code_block": _render_fence,
        "th_open": _render_cell_open,
        "td_open": _render_cell_open,
        "link_open": _render_link_open,
        "html_inline": _render_task_checkbox,
        "image": _image_rule(allow_images),
    }
    for name, rule in rules.items():
        md.add_render_rule(name, rule)
    return md


def normalize(text: str) -> str:
    """markdown-it's own input normalization, applied early so line offsets match it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def render_tokens(md: MarkdownIt, tokens: Sequence[Token], env: EnvType, allow_images: bool) -> str:
    """Sanitized HTML of parsed tokens."""
    return sanitize_html(md.renderer.render(tokens, md.options, env), allow_images=allow_images)


def render_markdown(text: str, *, allow_images: bool = False) -> str:
    """Render Markdown to sanitized HTML in one go."""
    md = parser(allow_images)
    env: EnvType = {}
    return render_tokens(md, md.parse(text, env), env, allow_images)
