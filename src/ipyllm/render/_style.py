"""The one stylesheet of the live view and its static copy (ours, so not sanitized).

``MARKDOWN_CSS`` styles what the renderer emits (Markdown with Pygments' classes, math, the
reasoning and tool blocks), scoped to a container with class ``ipyllm-md``; ``STYLESHEET``
adds the view's own parts (status line, errors, raw events).
"""

from __future__ import annotations

from ._highlight import PYGMENTS_CSS

__all__ = ["MARKDOWN_CSS", "STYLESHEET", "markdown_stylesheet"]

_MARKDOWN_RULES = """\
.ipyllm-md { line-height: 1.5; overflow-wrap: anywhere; }
.ipyllm-md table { border-collapse: collapse; margin: 0.5em 0; }
.ipyllm-md th, .ipyllm-md td {
  border: 1px solid var(--jp-border-color1, #8886); padding: 0.25em 0.6em; }
.ipyllm-md th { background: var(--jp-layout-color2, #8881); }
/* tr > ...: more specific than JupyterLab's rendered-HTML table rules (the static copy). */
.ipyllm-md tr > .ipyllm-align-left { text-align: left; }
.ipyllm-md tr > .ipyllm-align-center { text-align: center; }
.ipyllm-md tr > .ipyllm-align-right { text-align: right; }
.ipyllm-md pre.ipyllm-code code { background: transparent; padding: 0; }
.ipyllm-md li.task-list-item { list-style: none; }
.ipyllm-md ul.contains-task-list { padding-left: 1.2em; }
.ipyllm-md pre.ipyllm-code, .ipyllm-md pre.ipyllm-math-pending {
  background: var(--jp-layout-color2, #8881); border-radius: 4px;
  padding: 0.5em 0.75em; overflow-x: auto; }
.ipyllm-md pre.ipyllm-math-pending { opacity: 0.6; white-space: pre-wrap; }
.ipyllm-md code { font-family: var(--jp-code-font-family, monospace); font-size: 0.92em; }
.ipyllm-md :not(pre) > code {
  background: var(--jp-layout-color2, #8881); border-radius: 3px; padding: 0.05em 0.3em; }
.ipyllm-md .ipyllm-math-display { display: block; margin: 0.5em 0; overflow-x: auto; }
.ipyllm-md blockquote {
  border-left: 3px solid var(--jp-border-color2, #8886); margin-left: 0; padding-left: 0.8em;
  color: var(--jp-ui-font-color2, inherit); }
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
    """``MARKDOWN_CSS`` as a ``<style>`` element (trusted: add it outside the sanitizer)."""
    return f"<style>{MARKDOWN_CSS}</style>"


_VIEW_CSS = """\
.ipyllm-status { font-size: 0.85em; color: var(--jp-ui-font-color2, #777);
  font-family: var(--jp-ui-font-family, sans-serif); padding: 2px 0; }
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
"""

# CSS for everything a view shows: the Markdown and the view's own parts.
STYLESHEET: str = MARKDOWN_CSS + _VIEW_CSS
