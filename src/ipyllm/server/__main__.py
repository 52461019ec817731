"""``python -m ipyllm.server``: run the teaching server and print the wire log."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
import time

from ipyllm.server._app import LogRecord
from ipyllm.server._help import HELP_TEXT
from ipyllm.server._http import TeachingServer

_SHOWN_EVENTS = ("request", "complete", "disconnect", "drop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipyllm.server",
        description="A fake LLM API that streams a demo answer in every provider's format.",
        # The routes (URL shapes) and the /with/ fault options, as GET / serves them.
        epilog=HELP_TEXT[HELP_TEXT.index("Routes (") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)"
    )
    parser.add_argument("--fixtures", metavar="DIR", help="directory of captures for replay=FILE")
    parser.add_argument("--rate", type=float, default=40.0, help="tokens per second, 0 = no pacing")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before the first token")
    parser.add_argument("--quiet", action="store_true", help="do not print one line per request")
    args = parser.parse_args(argv)
    server = TeachingServer(
        args.host,
        args.port,
        fixtures_dir=args.fixtures,
        token_rate=args.rate,
        first_token_latency=args.latency,
        on_log=None if args.quiet else _print_record,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a class session ends
            asyncio.run(_serve(server))
    except OSError as exc:  # raised by the bind, before anything was served
        if exc.errno == errno.EADDRINUSE:
            print(f"port {args.port} is taken, choose another with --port", file=sys.stderr)
        else:
            print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                  file=sys.stderr)  # fmt: skip
        return 1
    print("stopped", flush=True)
    return 0


async def _serve(server: TeachingServer) -> None:
    await server.start()
    _print_banner(server.url)
    stopped = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        await stopped.wait()
    finally:
        await server.stop()


def _print_banner(url: str) -> None:
    print(f"ipyllm teaching server listening on {url}", flush=True)
    print(
        f"  %%chat -p openai --base-url {url}/v1\n"
        f"  %%chat -p anthropic --base-url {url}\n"
        f"  %%chat -p ollama --base-url {url}\n"
        f"  %%chat -p gemini --base-url {url}/v1beta\n"
        f"  faults: --base-url {url}/with/status=429,retry_after=1,times=1/v1\n"
        f"  routes and options: curl {url}/\n"
        "Ctrl-C stops the server.",
        flush=True,
    )


def _print_record(record: LogRecord) -> None:
    if record["event"] not in _SHOWN_EVENTS:
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(record["time"]))
    if record["event"] == "request":
        detail = f"{record['method']} {record['path']} -> {record['status']} from {record['peer']}"
    else:
        detail = f"{record['bytes']} bytes"
    print(f"{stamp} #{record['id']} {record['event']:<10} {detail}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
