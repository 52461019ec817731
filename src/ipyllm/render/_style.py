"""The one stylesheet of the live view and its static copy (ours, so not sanitized)."""

from __future__ import annotations

from ._markdown import STYLESHEET as MARKDOWN_CSS

_VIEW_CSS = """\
.ipyllm-status { font-size: 0.85em; color: var(--jp-ui-font-color2, #777);
  font-family: var(--jp-ui-font-family, sans-serif); padding: 2px 0; }
.ipyllm-status.ipyllm-state-stopped { color: var(--jp-warn-color0, #b26b00); }
.ipyllm-status.ipyllm-state-error { color: var(--jp-error-color0, #c62828); }
.ipyllm-spinner { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em;
  vertical-align: -0.1em; border: 2px solid currentColor; border-right-color: transparent;
  border-radius: 50%; animation: ipyllm-spin 0.8s linear infinite; }
@keyframes ipyllm-spin { to { transform: rotate(360deg); } }
.ipyllm-note { font-size: 0.85em; color: var(--jp-ui-font-color2, #777); font-style: italic; }
.ipyllm-error { color: var(--jp-error-color0, #c62828); border-left: 3px solid currentColor;
  padding: 0.3em 0.6em; margin: 0.4em 0; white-space: pre-wrap; }
.ipyllm-refusal { color: var(--jp-warn-color0, #b26b00); font-style: italic; margin: 0.4em 0; }
.ipyllm-tool-name { font-weight: bold; }
.ipyllm-tool pre, .ipyllm-reasoning pre, .ipyllm-text { white-space: pre-wrap; margin: 0; }
.ipyllm-text { font-family: var(--jp-code-font-family, monospace); }
.ipyllm-raw { font-family: var(--jp-code-font-family, monospace); font-size: 0.8em;
  max-height: 20em; overflow: auto; border-top: 1px dashed var(--jp-border-color2, #8886); }
.ipyllm-raw-event { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.4; }
.ipyllm-raw-time { color: var(--jp-ui-font-color2, #777); }
/* The live view's HTMLMath blocks take the full width, as in the static copy. */
.ipyllm-md .widget-htmlmath-content { flex: 1 1 auto; min-width: 0; }
"""

STYLESHEET = MARKDOWN_CSS + _VIEW_CSS
