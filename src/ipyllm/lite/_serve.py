"""``python -m ipyllm.lite serve OUTDIR``: the site over HTTP on 127.0.0.1, with the right types.

Python's ``http.server`` does not know ``.mjs`` or ``.wasm``; browsers refuse a module or a
WebAssembly file served as anything else.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MIME_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".ipynb": "application/json",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
    ".svg": "image/svg+xml",
    ".css": "text/css",
    ".html": "text/html",
}


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site's files with the types browsers insist on, never cached; subclass it
    to serve more (``serve_in_thread(site, handler_class=...)``)."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}  # noqa: RUF012

    def end_headers(self) -> None:
        # A rebuilt site must not mix with cached pieces of the old one.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.quiet:  # type: ignore[attr-defined]
            return
        super().log_message(format, *args)


class SiteServer(ThreadingHTTPServer):
    """A built site over HTTP (``url``); refuses a folder that holds no site."""

    daemon_threads = True

    def __init__(
        self,
        site: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = False,
        handler_class: type[SiteHandler] = SiteHandler,
    ) -> None:
        if not (Path(site) / "index.html").exists():
            raise FileNotFoundError(f"no site at {site}: build it with python -m ipyllm.lite build")
        handler = functools.partial(handler_class, directory=str(site))
        super().__init__((host, port), handler)
        self.quiet = quiet

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve_in_thread(
    site: Path, port: int = 0, quiet: bool = True, handler_class: type[SiteHandler] = SiteHandler
) -> SiteServer:
    """Serve ``site`` from a daemon thread; ``server.shutdown()`` stops it."""
    server = SiteServer(site, port=port, quiet=quiet, handler_class=handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
