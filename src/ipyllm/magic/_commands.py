"""The ``%chat`` commands: stop, running, history, reset, sessions, export, models, log."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from .. import runner
from ..client import list_models, resolve
from ..client.store import LoggedTurn, Store
from ..conversation import Session
from ..errors import ConfigurationError, StoreError, StreamError
from ..options import Options
from ..render import escape_markdown


class Commands:
    """The commands, mixed into the magics (which provide sessions and the store)."""

    _store_problem: str | None
    sessions: dict[str, Session]

    def _session(self, name: str, *, new: bool = False) -> Session:
        raise NotImplementedError

    def _store(self, options: Options) -> Store:
        raise NotImplementedError

    def _command(self, command: str, rest: list[str], options: Options) -> None:
        if command == "stop":
            items = runner.running()
            runner.stop_all()
            print(f"stopped {len(items)} answer{'s' if len(items) != 1 else ''}")
            for item in items:
                print(f"  {describe(item)}")
        elif command == "running":
            items = runner.running()
            print(f"{len(items) or 'nothing'} running" + (":" if items else ""))
            for item in items:  # shown again here: a page that reloaded can see and stop it
                print(f"  {describe(item)}")
                show = getattr(getattr(item, "sink", None), "display_again", None)
                if show is not None:
                    show()
        elif command == "history":
            show_markdown(self._session(options.session).to_markdown())
        elif command == "reset":
            self._session(options.session, new=True)
            print(f"session '{options.session}' is empty again")
        elif command == "sessions":
            for name, session in self.sessions.items():
                print(f"{name}: {len(session.turns)} turns")
        elif command == "export":
            self._export(rest, options)
        elif command == "models":
            self._models(options)
        elif command == "log":
            self._show_log(options, " ".join(rest) or None)
        elif command == "log-export":
            self._export_log(options, rest)

    def _export(self, rest: list[str], options: Options) -> None:
        if len(rest) != 1 or Path(rest[0]).suffix not in (".md", ".json"):
            raise UsageError("%chat export takes one file name ending in .md or .json")
        session = self._session(options.session)
        path = Path(rest[0])
        text = session.to_json() if path.suffix == ".json" else session.to_markdown()
        path.write_text(text, encoding="utf-8")
        print(f"wrote {len(session.turns)} turns of session '{session.name}' to {path}")

    def _logged_turns(
        self, options: Options, search: str | None, limit: int = 20
    ) -> list[LoggedTurn]:
        try:
            return self._store(options).turns(search=search, limit=limit)
        except StoreError as error:
            raise UsageError(str(error)) from None

    def _show_log(self, options: Options, search: str | None) -> None:
        turns = self._logged_turns(options, search)
        where = f" matching {search!r}" if search else ""
        print(f"{len(turns)} most recent turns{where} in {self._store(options).path}:")
        for turn in turns:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.created))
            mark = "" if turn.status == "done" else f" [{turn.status}]"
            answer = " ".join(turn.answer.split())
            print(f"- {when} {turn.session} · {turn.model}{mark}: {turn.prompt.strip()[:60]!r}")
            print(f"    {answer[:100]}{'…' if len(answer) > 100 else ''}")
        if self._store_problem:
            print(f"(a turn could not be logged: {self._store_problem})")

    def _export_log(self, options: Options, rest: list[str]) -> None:
        if not rest or Path(rest[0]).suffix not in (".md", ".json"):
            raise UsageError("%chat log-export takes a file name ending in .md or .json")
        path, search = Path(rest[0]), " ".join(rest[1:]) or None
        turns = self._logged_turns(options, search, limit=1_000_000)
        if path.suffix == ".json":
            text = json.dumps([vars(turn) for turn in turns], indent=2, ensure_ascii=False)
        else:
            text = "# ipyllm conversation log\n\n" + "\n\n".join(
                f"## {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t.created))} · "
                f"{t.session} · {t.model} ({t.status})\n\n**You:**\n\n{t.prompt}\n\n"
                f"**Answer:**\n\n{t.answer}" + (f"\n\n> Error: {t.error}" if t.error else "")
                for t in turns
            )
        path.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {len(turns)} logged turns to {path}")

    def _models(self, options: Options) -> None:
        try:
            target = resolve(options.provider, None, options.base_url)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None
        asked = list_models(options.provider, options.base_url)
        if sys.platform != "emscripten":
            try:
                print(_model_listing(target.provider, target.base_url, _run_sync(asked)))
            except (ConfigurationError, StreamError) as error:
                raise UsageError(str(error)) from None
            return
        # Pyodide has no thread to wait in: the list replaces a placeholder when it comes.
        from IPython.display import display

        shown = display({"text/plain": f"asking {target.base_url} for its models..."},
                        raw=True, display_id=True)  # fmt: skip

        async def show_when_listed() -> None:
            try:
                text = _model_listing(target.provider, target.base_url, await asked)
            except (ConfigurationError, StreamError) as error:
                text = f"UsageError: {error}"
            shown.update({"text/plain": text}, raw=True)

        _pending.add(task := asyncio.ensure_future(show_when_listed()))
        task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()  # held: the loop keeps only weak references


def _model_listing(provider: str, base_url: str, names: list[str]) -> str:
    return "\n".join(
        [f"{len(names)} models from {provider} at {base_url}:", *(f"  {n}" for n in sorted(names))]
    )


def show_markdown(text: str) -> None:
    """Show Markdown rendered (text/markdown, escaped as the static copy's is: raw HTML as
    text, no remote image, no unsafe link), and as it is written where nothing renders."""
    from IPython.display import display

    display({"text/markdown": escape_markdown(text), "text/plain": text}, raw=True)


def _run_sync(coroutine: Any) -> Any:
    """Run a coroutine to its end, also from code that a running loop is executing."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def describe(item: Any) -> str:
    """One line about something running: an answer, or a batch of them."""
    if isinstance(item, runner.Batch):
        states = [t.status if t is not None else "queued" for t in item.transcripts]
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
        return f"{item.count} answers: {counts}"
    transcript = item.transcript
    name = " · ".join(filter(None, (transcript.provider, transcript.model)))
    return f"{name}: {len(transcript.text)} characters so far"
