"""An application on top of everything, like the teaching server: a JupyterLite site.

``python -m ipyllm.lite build OUTDIR`` builds a static site (JupyterLab and Notebook in the
browser, Python by Pyodide) with ipyllm and its notebooks in it, from the npm registry and
PyPI only, and with nothing fetched from elsewhere when it runs; ``python -m ipyllm.lite
serve OUTDIR`` serves it on 127.0.0.1. The build tools come with ``pip install
'ipyllm[lite]'``. In the site, ``%%chat`` talks to providers through the browser's ``fetch``
(``ipyllm.client._fetch``).
"""

from __future__ import annotations

__all__ = ["build", "serve_in_thread"]


def __getattr__(name: str) -> object:
    if name == "build":
        from ._build import build

        return build
    if name == "serve_in_thread":
        from ._serve import serve_in_thread

        return serve_in_thread
    raise AttributeError(name)
