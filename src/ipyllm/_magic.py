"""The ``%%chat`` and ``%chat`` magics: a thin shell over :func:`ipyllm.chat`.

Options come from the magic's line, then ``%config Chat.<option> = ...``, then
environment variables (``OPENAI_API_KEY``...), then the offline demo model.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Float, Integer, Unicode, Union
from traitlets.config import Configurable

import ipyllm

from ._chat import chat, stop_all
from ._client import list_models
from ._errors import ConfigurationError, StreamError
from ._interpolate import interpolate
from ._session import Session, Turn, history_messages, prompt_budget
from ._store import LoggedTurn, Store, StoreError, default_store_path
from ._transcript import Transcript

SUBCOMMANDS = ("stop", "history", "reset", "export", "models", "sessions", "log", "log-export")


class Chat(Configurable):
    """Defaults for ``%%chat``; set them with ``%config Chat.<name> = value``."""

    provider = Unicode(
        None, allow_none=True, help="openai, anthropic, gemini, ollama, demo..."
    ).tag(config=True)
    model = Unicode(None, allow_none=True, help="Model name.").tag(config=True)
    base_url = Unicode(None, allow_none=True, help="Any OpenAI-compatible server.").tag(config=True)
    system = Unicode(None, allow_none=True, help="System prompt for new turns.").tag(config=True)
    temperature = Float(None, allow_none=True).tag(config=True)
    max_tokens = Integer(None, allow_none=True).tag(config=True)
    params = Dict(help="Other request parameters, e.g. {'top_p': 0.9, 'seed': 1}.").tag(config=True)
    format = Enum(["markdown", "text"], "markdown").tag(config=True)
    wait = Bool(
        None, allow_none=True, help="Wait for the whole answer (None: only in headless runs)."
    ).tag(config=True)
    events = Bool(False, help="Show the raw wire events next to the answer.").tag(config=True)
    interpolate = Bool(True, help="Fill in {name} from the notebook's variables.").tag(config=True)
    history = Bool(True, help="Send the session's earlier turns.").tag(config=True)
    session = Unicode("default").tag(config=True)
    context_window = Integer(
        None, allow_none=True, help="Tokens the model accepts; guessed from its name if None."
    ).tag(config=True)
    max_height = Unicode(None, allow_none=True, help="CSS height limit, e.g. '30em'.").tag(
        config=True
    )
    record = Bool(
        None, allow_none=True, help="Keep each exchange in the store (None: IPYLLM_RECORD)."
    ).tag(config=True)
    replay = Union(
        [Bool(), Enum(["fallback"])],
        default_value=None,
        allow_none=True,
        help="Answer from recordings (True), or from the model when none (fallback).",
    ).tag(config=True)
    replay_speed = Float(
        None, allow_none=True, help="0: at once, 1: the recorded pace, N: N times faster."
    ).tag(config=True)
    store = Unicode(
        None, allow_none=True, help="SQLite file (default IPYLLM_STORE or .ipyllm/store.sqlite3)."
    ).tag(config=True)
    log = Bool(True, help="Log every turn in the store (see %chat log).").tag(config=True)


def _param(text: str) -> tuple[str, Any]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise UsageError(f"--param takes NAME=VALUE, not {text!r}")
    try:
        return name.strip(), json.loads(value)  # numbers, true/false, lists, quoted strings
    except ValueError:
        return name.strip(), value  # a bare word is a string


@magics_class
class ChatMagics(Magics):
    def __init__(self, shell: Any, config: Chat) -> None:
        super().__init__(shell)
        self.settings = config
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._store_instance: Store | None = None
        self._store_problem: str | None = None

    @magic_arguments()
    @argument("-m", "--model", help="model name (default: the provider's)")
    @argument("-p", "--provider", help="openai, openai-responses, anthropic, gemini, ollama, demo")
    @argument("--base-url", help="server URL, e.g. http://127.0.0.1:8080/v1 for llama.cpp")
    @argument("-s", "--system", help="system prompt")
    @argument("-t", "--temperature", type=float)
    @argument("--max-tokens", type=int)
    @argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other request parameter (repeatable): --param top_p=0.9 --param seed=1",
    )
    @argument("--session", help="conversation name (default: 'default')")
    @argument("--new", action="store_true", help="start the session afresh")
    @argument("--no-history", action="store_true", help="send this prompt alone")
    @argument("--format", choices=["markdown", "text"], help="how to show the answer")
    @argument("-o", "--out", metavar="NAME", help="bind a handle on the answer to NAME")
    @argument("--wait", action="store_true", default=None, help="wait for the whole answer")
    @argument("--no-wait", dest="wait", action="store_false", help="stream in the background")
    @argument("--events", action="store_true", default=None, help="show the raw wire events")
    @argument("--no-interpolate", action="store_true", help="send {braces} as written")
    @argument("--record", action="store_true", default=None, help="keep this exchange")
    @argument(
        "--replay",
        nargs="?",
        const=True,
        choices=[True, "fallback"],
        type=lambda text: text if text == "fallback" else True,
        help="answer from a recording (--replay fallback: from the model when none)",
    )
    @argument("--replay-speed", type=float, help="0: at once, 1: recorded pace, N: N x faster")
    @argument("words", nargs="*", help=f"%%chat: a prompt, or one of: {', '.join(SUBCOMMANDS)}")
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        """Ask a chat model; the answer streams into this cell's output.

        As a cell magic the cell is the prompt; as a line magic the rest of the line
        is, or a command: ``%chat stop`` (stop every answer), ``%chat history``,
        ``%chat reset``, ``%chat export FILE.md|FILE.json``, ``%chat models``,
        ``%chat sessions``, ``%chat log [TEXT]`` (recent turns from every session,
        searched), ``%chat log-export FILE.md|FILE.json [TEXT]``. The cell returns at
        once: click Stop, or ``%chat stop``, to end an answer early. ``{name}`` in the
        prompt is replaced by the value of the variable ``name``.
        """
        args = parse_argstring(self.chat, line)
        if cell is None:
            if args.words and args.words[0] in SUBCOMMANDS:
                return self._command(args.words[0], args.words[1:], args)
            prompt = " ".join(args.words)
        else:
            if args.words:
                raise UsageError(f"unexpected words after %%chat: {' '.join(args.words)!r}")
            prompt = cell
        if not prompt.strip():
            raise UsageError("nothing to send: write the prompt in the cell below %%chat")
        try:
            self._ask(prompt.strip("\n"), args)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None

    # -- asking -----------------------------------------------------------------------
    def _ask(self, prompt: str, args: Any) -> None:
        settings = self.settings
        if settings.interpolate and not args.no_interpolate:
            prompt = interpolate(prompt, self.shell.user_ns)
        session = self._session(args.session, new=args.new)
        model = args.model or settings.model
        system = first_set(args.system, settings.system)
        params = self._request_params(args)
        cell_id = self._cell_id()
        with self._lock:
            position = session.position_for(cell_id, prompt)
            earlier = session.turns[:position] if settings.history and not args.no_history else []
        options = {
            "provider": args.provider or settings.provider,
            "model": model,
            "base_url": args.base_url or settings.base_url,
        }
        # The model decides the history budget; keys are checked when the stream is made.
        target = ipyllm._config.resolve(**options, require_key=False)
        budget = prompt_budget(target.model, params.get("max_tokens"), settings.context_window)
        messages, dropped = history_messages(earlier, system, prompt, budget=budget)
        notes = []
        if dropped:
            turns = "turn" if dropped == 1 else "turns"
            notes.append(
                f"The {dropped} oldest {turns} of session '{session.name}' were left out "
                f"to fit {target.model}'s context window."
            )
        result = chat(
            messages,
            wait=first_set(args.wait, settings.wait),
            format=args.format or settings.format,
            events=first_set(args.events, settings.events),
            max_height=settings.max_height,
            notes=notes,
            on_done=self._logger(session.name, cell_id, prompt),
            record=first_set(args.record, settings.record),
            replay=first_set(args.replay, settings.replay),
            replay_speed=first_set(args.replay_speed, settings.replay_speed),
            store=self._store(),
            **options,
            **params,
        )
        with self._lock:
            session.put(position, Turn(prompt, result.transcript, cell_id))
        if args.out:
            self.shell.user_ns[args.out] = result
        ipyllm.last = result

    def _request_params(self, args: Any) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.settings.params)
        for name in ("temperature", "max_tokens"):
            value = first_set(getattr(args, name), getattr(self.settings, name))
            if value is not None:
                params[name] = value
        params.update(_param(text) for text in args.param)
        return params

    def _cell_id(self) -> str | None:
        """The frontend's id of the running cell (JupyterLab, Notebook 7 and VS Code send it)."""
        parent = getattr(self.shell, "parent_header", None) or {}
        cell_id = parent.get("metadata", {}).get("cellId")
        return str(cell_id) if cell_id else None

    def _session(self, name: str | None, *, new: bool = False) -> Session:
        name = name or self.settings.session
        with self._lock:
            if new or name not in self.sessions:
                self.sessions[name] = Session(name)
            return self.sessions[name]

    def _store(self) -> Store:
        path = self.settings.store
        if self._store_instance is None or str(self._store_instance.path) != str(
            path or default_store_path()
        ):
            self._store_instance = Store(path)
        return self._store_instance

    def _logger(
        self, session: str, cell_id: str | None, prompt: str
    ) -> Callable[[Transcript], None] | None:
        """What logs a finished turn in the store; a store problem is reported once."""
        if not self.settings.log:
            return None
        store = self._store()

        def log(transcript: Transcript) -> None:
            try:
                store.log_turn(session, cell_id, prompt, transcript)
            except StoreError as error:
                if self._store_problem is None:
                    warnings.warn(str(error), stacklevel=1)
                self._store_problem = str(error)

        return log

    # -- commands -----------------------------------------------------------------------
    def _command(self, command: str, rest: list[str], args: Any) -> None:
        if command == "stop":
            stopped = stop_all()
            print(f"stopped {stopped} answer{'s' if stopped != 1 else ''}")
        elif command == "history":
            print(self._session(args.session).to_markdown())
        elif command == "reset":
            self._session(args.session, new=True)
            print(f"session '{args.session or self.settings.session}' is empty again")
        elif command == "sessions":
            for name, session in self.sessions.items():
                print(f"{name}: {len(session.turns)} turns")
        elif command == "export":
            self._export(rest, args)
        elif command == "models":
            self._models(args)
        elif command == "log":
            self._show_log(" ".join(rest) or None)
        elif command == "log-export":
            self._export_log(rest)

    def _export(self, rest: list[str], args: Any) -> None:
        if len(rest) != 1 or Path(rest[0]).suffix not in (".md", ".json"):
            raise UsageError("%chat export takes one file name ending in .md or .json")
        session = self._session(args.session)
        path = Path(rest[0])
        text = session.to_json() if path.suffix == ".json" else session.to_markdown()
        path.write_text(text, encoding="utf-8")
        print(f"wrote {len(session.turns)} turns of session '{session.name}' to {path}")

    def _logged_turns(self, search: str | None, limit: int = 20) -> list[LoggedTurn]:
        try:
            return self._store().turns(search=search, limit=limit)
        except StoreError as error:
            raise UsageError(str(error)) from None

    def _show_log(self, search: str | None) -> None:
        turns = self._logged_turns(search)
        where = f" matching {search!r}" if search else ""
        print(f"{len(turns)} most recent turns{where} in {self._store().path}:")
        for turn in turns:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.created))
            mark = "" if turn.status == "done" else f" [{turn.status}]"
            answer = " ".join(turn.answer.split())
            print(f"- {when} {turn.session} · {turn.model}{mark}: {turn.prompt.strip()[:60]!r}")
            print(f"    {answer[:100]}{'…' if len(answer) > 100 else ''}")
        if self._store_problem:
            print(f"(a turn could not be logged: {self._store_problem})")

    def _export_log(self, rest: list[str]) -> None:
        if not rest or Path(rest[0]).suffix not in (".md", ".json"):
            raise UsageError("%chat log-export takes a file name ending in .md or .json")
        path, search = Path(rest[0]), " ".join(rest[1:]) or None
        turns = self._logged_turns(search, limit=1_000_000)
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

    def _models(self, args: Any) -> None:
        options = {
            "provider": args.provider or self.settings.provider,
            "base_url": args.base_url or self.settings.base_url,
        }
        try:
            names = _run_sync(list_models(**options))
        except (ConfigurationError, StreamError) as error:
            raise UsageError(str(error)) from None
        target = ipyllm._config.resolve(**options)
        print(f"{len(names)} models from {target.provider} at {target.base_url}:")
        for name in sorted(names):
            print(f"  {name}")


def first_set(*values: Any) -> Any:
    """The first value that is not None: the cell's option, then %config's."""
    return next((value for value in values if value is not None), None)


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


def load_ipython_extension(shell: Any) -> None:
    config = Chat(parent=shell)
    shell.configurables.append(config)
    shell.register_magics(ChatMagics(shell, config))


__all__ = ["Chat", "ChatMagics", "load_ipython_extension"]
