"""``python -m ipyllm.lite build OUTDIR`` and ``python -m ipyllm.lite serve OUTDIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ipyllm.lite import BuildError, SiteServer
from ipyllm.lite import build as build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipyllm.lite",
        description="A static JupyterLite site with ipyllm: %%chat in the browser, no server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the site into OUTDIR (offline after once)")
    build.add_argument("outdir", type=Path)
    build.add_argument(
        "--replay",
        type=Path,
        metavar="STORE",
        help="a recordings file (.ipyllm/store.sqlite3): the site answers from it",
    )
    build.add_argument(
        "--wheel", type=Path, help="an ipyllm wheel to use instead of building this checkout's"
    )
    build.add_argument(
        "--contents",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="another notebook or file for the site (repeatable)",
    )
    build.add_argument("--cache", type=Path, help="download cache (~/.cache/ipyllm-lite)")
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    serve = commands.add_parser("serve", help="serve a built site on 127.0.0.1")
    serve.add_argument("outdir", type=Path)
    serve.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    args = parser.parse_args(argv)

    if args.command == "build":
        try:
            build_site(
                args.outdir,
                cache=args.cache,
                replay=args.replay,
                wheel=args.wheel,
                contents=args.contents,
                force=args.force,
            )
        except BuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"serve it with: python -m ipyllm.lite serve {args.outdir}")
        return 0

    try:
        server = SiteServer(args.outdir, port=args.port)
    except (FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ipyllm's JupyterLite site at {server.url}/lab/index.html (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
