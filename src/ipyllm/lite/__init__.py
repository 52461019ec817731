"""An application on top of everything, like the teaching server: a JupyterLite site.

``python -m ipyllm.lite build OUTDIR`` builds a static site (JupyterLab and Notebook in the
browser, Python by Pyodide) with ipyllm and its notebooks in it, from the npm registry and
PyPI only, and with nothing fetched from elsewhere when it runs; ``python -m ipyllm.lite
serve OUTDIR`` serves it on 127.0.0.1. The build tools come with ``pip install
'ipyllm[lite]'``. In the site, ``%%chat`` talks to providers through the browser's ``fetch``
(``ipyllm.client.FetchTransport``).

The command line is this API: :func:`build` (which raises :class:`BuildError`), with
:func:`default_cache` for its downloads, :func:`ipyllm_wheel` for the wheel it puts in the
site unless given one, and :func:`site_notebook` for what it makes of each notebook;
:class:`SiteServer` and :func:`serve_in_thread` serve a site, with :class:`SiteHandler`'s
types; :class:`PyodideLock` reads the Pyodide release the site runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._build import build, default_cache, site_notebook
    from ._pyodide import BuildError, PyodideLock
    from ._serve import SiteHandler, SiteServer, serve_in_thread
    from ._wheels import ipyllm_wheel

# Loaded on first use (PEP 562): serving needs no build tools (packaging).
_LAZY = {
    "build": "._build",
    "default_cache": "._build",
    "site_notebook": "._build",
    "BuildError": "._pyodide",
    "PyodideLock": "._pyodide",
    "SiteHandler": "._serve",
    "SiteServer": "._serve",
    "serve_in_thread": "._serve",
    "ipyllm_wheel": "._wheels",
}

__all__ = [
    "BuildError",
    "PyodideLock",
    "SiteHandler",
    "SiteServer",
    "build",
    "default_cache",
    "ipyllm_wheel",
    "serve_in_thread",
    "site_notebook",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ipyllm.lite' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
