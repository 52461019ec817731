"""The one stylesheet of the live view and its static copy (ours, so not sanitized).

``MARKDOWN_CSS`` styles what the renderer emits (Markdown with Pygments' classes, math, the
reasoning and tool blocks), scoped to a container with class ``ipyllm-md`` inside one with
class ``ipyllm`` (a view, live or static); ``STYLESHEET`` adds the view's own parts (status
line, errors, raw events).

The live view is widget HTML and the static copy JupyterLab's rendered HTML, each with
rules of its own (font size 13 px against 14 px, the browser's heading and paragraph
margins against JupyterLab's). So every size, margin and list marker the answer's look
depends on is set here, once for both: when the static copy takes the live view's place,
nothing moves. Two classes are enough to win: JupyterLab's strongest rules on the answer
have two classes too (``.jp-ThemedContainer .jp-RenderedHTMLCommon pre``,
``h1:first-child``) and come earlier in the page, and a later rule wins a tie.
"""

from __future__ import annotations

from ._highlight import PYGMENTS_CSS

__all__ = ["MARKDOWN_CSS", "STYLESHEET", "markdown_stylesheet"]

_MARKDOWN_RULES = """\
.ipyllm .ipyllm-md {
  font-family: var(--jp-content-font-family, inherit);
  font-size: var(--jp-content-font-size1, 14px); line-height: 1.5; overflow-wrap: anywhere; }
/* Blocks have a bottom margin only. The live view splits an answer among several widgets,
   whose margins never collapse into each other's, while the static copy's blocks are
   siblings, whose margins do: with only one margin between two blocks, it is the same
   space in both. A heading's space above it is padding, for the same reason. */
.ipyllm .ipyllm-md :is(p, ul, ol, blockquote, pre, table, hr, div.ipyllm-math-display) {
  margin: 0 0 0.75em; }
.ipyllm .ipyllm-md :is(h1, h2, h3, h4, h5, h6) {
  margin: 0 0 0.4em; padding: 0.4em 0 0; line-height: 1.3; font-weight: 600;
  font-style: normal; }
.ipyllm .ipyllm-md h1 { font-size: 1.6em; }
.ipyllm .ipyllm-md h2 { font-size: 1.35em; }
.ipyllm .ipyllm-md h3 { font-size: 1.15em; }
.ipyllm .ipyllm-md h4 { font-size: 1em; }
.ipyllm .ipyllm-md h5 { font-size: 0.95em; }
.ipyllm .ipyllm-md h6 { font-size: 0.9em; }
/* The browser's markers (JupyterLab's nested lists have others). */
.ipyllm .ipyllm-md :is(ul, ol) { padding: 0 0 0 1.75em; }
.ipyllm .ipyllm-md li > :is(ul, ol) { margin-bottom: 0; }
.ipyllm .ipyllm-md ul { list-style-type: disc; }
.ipyllm .ipyllm-md ul ul { list-style-type: circle; }
.ipyllm .ipyllm-md ul ul ul { list-style-type: square; }
.ipyllm .ipyllm-md ol { list-style-type: decimal; }
.ipyllm .ipyllm-md li.task-list-item { list-style: none; }
.ipyllm .ipyllm-md ul.contains-task-list { padding-left: 1.2em; }
.ipyllm .ipyllm-md hr {
  height: 0; border: 0; border-top: 1px solid var(--jp-border-color1, #8886); background: none; }
.ipyllm .ipyllm-md strong { font-weight: bold; }
.ipyllm .ipyllm-md em { font-style: italic; }
.ipyllm .ipyllm-md a { color: var(--jp-content-link-color, #1565c0); text-decoration: none; }
.ipyllm .ipyllm-md a:hover { text-decoration: underline; }
/* JupyterLab fixes a table's layout, sets its font size and its rows' line height, stripes
   its rows and right-aligns its cells: not here. */
.ipyllm .ipyllm-md table { border-collapse: collapse; table-layout: auto; font-size: inherit; }
.ipyllm .ipyllm-md tr { line-height: inherit; }
.ipyllm .ipyllm-md tbody tr { background: transparent; }
.ipyllm .ipyllm-md :is(th, td) {
  border: 1px solid var(--jp-border-color1, #8886); padding: 0.25em 0.6em;
  line-height: inherit; vertical-align: top; text-align: start; white-space: normal; }
.ipyllm .ipyllm-md th { background: var(--jp-layout-color2, #8881); font-weight: bold; }
.ipyllm .ipyllm-md tr > .ipyllm-align-left { text-align: left; }
.ipyllm .ipyllm-md tr > .ipyllm-align-center { text-align: center; }
.ipyllm .ipyllm-md tr > .ipyllm-align-right { text-align: right; }
/* Code's size and line height: JupyterLab sets its own code font size on widget HTML,
   and the surrounding text's on rendered HTML. */
.ipyllm .ipyllm-md pre {
  font-family: var(--jp-code-font-family, monospace); font-size: 1em; line-height: 1.45;
  color: inherit; border: 0; padding: 0; }
.ipyllm .ipyllm-md code {
  font-family: var(--jp-code-font-family, monospace); font-size: 0.9em; line-height: inherit;
  color: inherit; white-space: inherit; border: 0; }
.ipyllm .ipyllm-md :not(pre) > code {
  background: var(--jp-layout-color2, #8881); border-radius: 3px; padding: 0.05em 0.3em; }
.ipyllm .ipyllm-md pre > code { background: transparent; padding: 0; }
.ipyllm .ipyllm-md pre.ipyllm-code, .ipyllm .ipyllm-md pre.ipyllm-math-pending {
  background: var(--jp-layout-color2, #8881); border-radius: 4px;
  padding: 0.5em 0.75em; overflow-x: auto; }
.ipyllm .ipyllm-md pre.ipyllm-math-pending { opacity: 0.6; white-space: pre-wrap; }
.ipyllm .ipyllm-md .ipyllm-math-display { display: block; overflow-x: auto; }
.ipyllm .ipyllm-md span.ipyllm-math-display { margin: 0.5em 0; }
.ipyllm .ipyllm-md blockquote {
  border-left: 3px solid var(--jp-border-color2, #8886); padding: 0 0 0 0.8em;
  color: var(--jp-ui-font-color2, inherit); }
.ipyllm .ipyllm-md img { max-width: 100%; height: auto; }
.ipyllm-reasoning {
  color: var(--jp-ui-font-color2, #888); border-left: 3px solid var(--jp-border-color2, #8886);
  padding-left: 0.8em; font-size: 0.95em; }
.ipyllm-reasoning > summary { cursor: pointer; font-style: italic; }
.ipyllm-tool {
  font-family: var(--jp-code-font-family, monospace); font-size: 0.9em;
  border: 1px solid var(--jp-border-color2, #8886); border-radius: 4px;
  padding: 0.3em 0.6em; margin: 0.4em 0; }
.ipyllm-tool > summary { cursor: pointer; }
"""

# CSS for the renderer's HTML: Markdown, code, math, and the reasoning and tool blocks.
MARKDOWN_CSS: str = _MARKDOWN_RULES + PYGMENTS_CSS + "\n"


def markdown_stylesheet() -> str:
    """``MARKDOWN_CSS`` as a ``<style>`` element (trusted: add it outside the sanitizer).

    It styles HTML put in ``<div class="ipyllm"><div class="ipyllm-md">...</div></div>``.
    """
    return f"<style>{MARKDOWN_CSS}</style>"


_VIEW_CSS = """\
/* A control's height: the live view's header holds the Stop button beside it. */
.ipyllm-status { font-size: 0.85em; color: var(--jp-ui-font-color2, #777);
  font-family: var(--jp-ui-font-family, sans-serif); padding: 2px 0;
  line-height: var(--jp-widgets-inline-height, 28px); }
.ipyllm-status.ipyllm-state-error { color: #c62828; }
.ipyllm-spinner { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em;
  vertical-align: -0.1em; border: 2px solid currentColor; border-right-color: transparent;
  border-radius: 50%; animation: ipyllm-spin 0.8s linear infinite; }
@keyframes ipyllm-spin { to { transform: rotate(360deg); } }
.ipyllm-note { font-size: 0.85em; color: var(--jp-ui-font-color2, #777); font-style: italic; }
.ipyllm-error { color: #c62828; border-left: 3px solid currentColor;
  padding: 0.3em 0.6em; margin: 0.4em 0; white-space: pre-wrap; }
/* Error red at 4.5:1 or more: #c62828 on white (5.6), #e57373 on dark cells (5.4). */
[data-jp-theme-light="false"] .ipyllm-error, body.vscode-dark .ipyllm-error,
[data-jp-theme-light="false"] .ipyllm-status.ipyllm-state-error,
body.vscode-dark .ipyllm-status.ipyllm-state-error { color: #e57373; }
.ipyllm-stopped { color: var(--jp-ui-font-color1, inherit); font-style: italic;
  border-left: 3px solid var(--jp-border-color1, #999); padding: 0.3em 0.6em; margin: 0.4em 0; }
.ipyllm-refusal { color: var(--jp-warn-color0, #b26b00); font-style: italic; margin: 0.4em 0; }
.ipyllm-tool-name { font-weight: bold; }
.ipyllm-tool pre, .ipyllm-reasoning pre, .ipyllm-text { white-space: pre-wrap; margin: 0; }
.ipyllm-text { font-family: var(--jp-code-font-family, monospace); }
.ipyllm-raw { font-family: var(--jp-code-font-family, monospace); font-size: 0.8em;
  border-top: 1px dashed var(--jp-border-color2, #8886); }
/* column-reverse: the newest events stay in view unless the reader scrolls up. */
.ipyllm-raw-scroll { max-height: 20em; overflow: auto; display: flex;
  flex-direction: column-reverse; }
/* The events overflow the scroller, which follows their end: a widget box (overflow: auto,
   so no minimum height) would shrink to the scroller and show its own first events. */
.ipyllm-raw-scroll > .ipyllm-raw { flex: 0 0 auto; overflow: visible; }
.ipyllm-raw-event { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.4; }
.ipyllm-raw-time { color: var(--jp-ui-font-color2, #777); }
/* The live view's HTMLMath blocks take the full width, as in the static copy. */
.ipyllm-md .widget-htmlmath-content { flex: 1 1 auto; min-width: 0; }
/* The same font size and line height around the answer, live and static: the widgets'
   size, and 1.5 (an HTML widget's own, 28 px, is a control's, too tall for text). The
   live view's HTML widgets inherit them, so that its parts' em sizes apply. */
.ipyllm { font-size: var(--jp-widgets-font-size, 13px); line-height: 1.5; }
.ipyllm.ipyllm-static { font-family: var(--jp-ui-font-family, inherit); }
.ipyllm :is(.widget-html, .widget-htmlmath, .widget-html-content, .widget-htmlmath-content) {
  font-size: inherit; line-height: inherit; }
.ipyllm :is(.ipyllm-tool, .ipyllm-reasoning) pre {
  font-family: inherit; font-size: inherit; line-height: 1.4; }
/* The static copy's reasoning summary is as tall as the live view's reasoning button. */
.ipyllm.ipyllm-static > .ipyllm-reasoning > summary {
  line-height: var(--jp-widgets-inline-height, 28px); margin: var(--jp-widgets-margin, 2px) 0; }
/* Each part of the live view is a widget, which keeps its children's margins inside it. */
.ipyllm.ipyllm-static > .ipyllm-body { display: flow-root; }
/* JupyterLab pads rendered HTML on the right and gives its last element a bottom margin;
   JupyterLab 3 gives a widget's output a margin. None of them around either copy. */
.jp-RenderedHTMLCommon:has(> .ipyllm-static, > [data-ipyllm-fallback]) { padding-right: 0; }
.jp-RenderedHTMLCommon > :is(.ipyllm-static, [data-ipyllm-fallback]) { margin-bottom: 0; }
.jp-OutputArea-output.jupyter-widgets:has(> .ipyllm) { margin-top: 0; margin-bottom: 0; }
"""

# CSS for everything a view shows: the Markdown and the view's own parts.
STYLESHEET: str = MARKDOWN_CSS + _VIEW_CSS
