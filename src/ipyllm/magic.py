"""Layer 9, the ``%%chat`` and ``%chat`` magics: a thin shell over :func:`ipyllm.chat`.

Every option is declared once, in :class:`ipyllm.options.Options`: the magic's
flags and the ``%config Chat.<name>`` traits are generated from it, and
:func:`ipyllm.options.resolve_options` decides precedence (the cell's option, then
``%config``, then the environment, then the default).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Float, Integer, TraitType, Unicode, Union
from traitlets.config import Configurable

import ipyllm

from ._chat import chat, stop_all
from .client import list_models, resolve
from .client.store import LoggedTurn, Store, default_store_path
from .conversation import Session, Turn, history_messages, interpolate, prompt_budget
from .errors import ConfigurationError, StoreError, StreamError
from .options import Options, OptionSpec, default_value, option_specs, parse_param, resolve_options
from .transcript import Transcript

SUBCOMMANDS = ("stop", "history", "reset", "export", "models", "sessions", "log", "log-export")
F = TypeVar("F", bound=Callable[..., Any])


def _trait(name: str, spec: OptionSpec) -> TraitType[Any, Any]:
    """The ``%config Chat.<name>`` trait of an option."""
    default = default_value(name)
    # None means "not chosen": %config must be able to hold it too.
    settings: dict[str, Any] = {"help": spec.help, "allow_none": default is None}
    trait: TraitType[Any, Any]
    if spec.kind == "str":
        trait = Unicode(default, **settings)
    elif spec.kind == "int":
        trait = Integer(default, **settings)
    elif spec.kind == "float":
        trait = Float(default, **settings)
    elif spec.kind == "bool":
        trait = Bool(default, **settings)
    elif spec.kind == "dict":
        trait = Dict(help=spec.help)
    elif spec.kind == "choice":
        trait = Enum(list(spec.choices), default, help=spec.help)
    else:  # replay: True, False or "fallback"
        trait = Union(
            [Bool(), Enum(["fallback"])], default_value=None, allow_none=True, help=spec.help
        )
    return trait.tag(config=True)


Chat: type[Configurable] = type(
    "Chat",
    (Configurable,),
    {
        "__doc__": "Defaults for ``%%chat``; set them with ``%config Chat.<name> = value``.",
        "__module__": __name__,
        **{name: _trait(name, spec) for name, spec in option_specs().items() if spec.config},
    },
)


class _Switch(argparse.Action):
    """``--name`` sets True, ``--no-name`` sets False; absent stays None (not chosen)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))


def _replay_value(text: str) -> bool | str:
    """``--replay`` alone means True; its only value is ``fallback``. Anything else is an
    error, rather than a prompt's first word taken silently as the value."""
    if text == "fallback":
        return text
    hint = " (did you mean 'fallback'?)" if _closest(text, ["fallback"]) else ""
    raise argparse.ArgumentTypeError(f"takes no value or 'fallback', not {text!r}{hint}")


# A one-word line this close to a command is taken for a mistyped command, not a prompt.
_COMMAND_CUTOFF = 0.75


def _closest(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)")
_INVALID_CHOICE = re.compile(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)")


def _explain_usage(message: str, parser: argparse.ArgumentParser) -> str:
    """argparse's error, naming the closest option (or choice) when there is one."""
    unrecognized = _UNRECOGNIZED.fullmatch(message)
    if unrecognized:
        for token in unrecognized.group(1).split():
            if not token.startswith("-"):
                continue
            name = token.split("=", 1)[0]
            # Compared without the dashes, which every long option shares.
            options = [flag[2:] for flag in parser._option_string_actions if flag[:2] == "--"]
            closest = _closest(name[2:], options) if name.startswith("--") else None
            if closest:
                return f"unknown option {name}: did you mean --{closest}?"
            break
        return message
    invalid = _INVALID_CHOICE.fullmatch(message)
    if invalid:
        option, value, choices = invalid.groups()
        closest = _closest(value, re.findall(r"'([^']*)'", choices))
        if closest:
            return f"{message}: did you mean {option} {closest}?"
    return message


def _with_option_flags(func: F) -> F:
    """Add one argparse argument per option that has flags, generated from its spec."""
    for name, spec in reversed(list(option_specs().items())):
        if not spec.flags:
            continue
        flags = spec.flags
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": spec.help}
        if spec.kind == "bool":
            flags = (*flags, *(f"--no-{flag[2:]}" for flag in flags if flag.startswith("--")))
            kwargs.update(action=_Switch, nargs=0)
        elif spec.kind in ("int", "float"):
            kwargs["type"] = int if spec.kind == "int" else float
        elif spec.kind == "choice":
            kwargs["choices"] = list(spec.choices)
        elif spec.kind == "dict":
            kwargs.update(action="append", metavar=spec.metavar)
        elif spec.kind == "replay":
            # The metavar is what %chat? shows: "--replay [fallback]".
            kwargs.update(nargs="?", const=True, type=_replay_value, metavar="fallback")
        func = argument(*flags, **kwargs)(func)
    return func


@magics_class
class ChatMagics(Magics):
    def __init__(self, shell: Any, config: Configurable) -> None:
        super().__init__(shell)
        self.settings = config
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._store_instance: Store | None = None
        self._store_problem: str | None = None

    @magic_arguments()
    @_with_option_flags
    @argument("--new", action="store_true", help="start the session afresh")
    @argument("-o", "--out", metavar="NAME", help="bind a handle on the answer to NAME")
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
        try:
            args = parse_argstring(self.chat, line)
        except UsageError as error:
            raise UsageError(_explain_usage(str(error), self.chat.parser)) from None
        try:
            options = self._options(args)
            if cell is None:
                if args.words and args.words[0] in SUBCOMMANDS:
                    return self._command(args.words[0], args.words[1:], options)
                if len(args.words) == 1:
                    _refuse_a_mistyped_command(args.words[0])
                prompt = " ".join(args.words)
            else:
                if args.words:
                    raise UsageError(f"unexpected words after %%chat: {' '.join(args.words)!r}")
                prompt = cell
            if not prompt.strip():
                raise UsageError("nothing to send: write the prompt in the cell below %%chat")
            self._ask(prompt.strip("\n"), args, options)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None

    def _options(self, args: argparse.Namespace) -> Options:
        """The options of this cell: its flags over %config over the environment."""
        specs = option_specs()
        cell = {name: getattr(args, name) for name, spec in specs.items() if spec.flags}
        cell["params"] = dict(parse_param(text) for text in args.params or [])
        config = {name: getattr(self.settings, name) for name, spec in specs.items() if spec.config}
        return resolve_options(cell, config)

    # -- asking -----------------------------------------------------------------------
    def _ask(self, prompt: str, args: argparse.Namespace, options: Options) -> None:
        assert self.shell is not None  # a magic always runs in a shell
        if options.interpolate:
            prompt = interpolate(prompt, self.shell.user_ns)
        session = self._session(options.session, new=args.new)
        cell_id = self._cell_id()
        with self._lock:
            position = session.position_for(cell_id, prompt)
            earlier = session.turns[:position] if options.history else []
        # The model decides the history budget; keys are checked when the stream is made.
        target = resolve(options.provider, options.model, options.base_url, require_key=False)
        budget = prompt_budget(target.model, options.max_tokens, options.context_window)
        messages, dropped = history_messages(earlier, options.system, prompt, budget=budget)
        notes = []
        if dropped:
            turns = "turn" if dropped == 1 else "turns"
            notes.append(
                f"The {dropped} oldest {turns} of session '{session.name}' were left out "
                f"to fit {target.model}'s context window."
            )
        result = chat(
            messages,
            wait=options.wait,
            format=options.format,
            events=options.events,
            max_height=options.max_height,
            notes=notes,
            on_done=self._logger(options, session.name, cell_id, prompt),
            provider=options.provider,
            model=options.model,
            base_url=options.base_url,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            params=options.params,
            max_retries=options.max_retries,
            stall_timeout=options.stall_timeout,
            record=options.record,
            replay=options.replay,
            replay_speed=options.replay_speed,
            store=self._store(options),
        )
        with self._lock:
            session.put(position, Turn(prompt, result.transcript, cell_id))
        if args.out:
            self.shell.user_ns[args.out] = result
        ipyllm.last = result

    def _cell_id(self) -> str | None:
        """The frontend's id of the running cell (JupyterLab, Notebook 7 and VS Code send it)."""
        parent = getattr(self.shell, "parent_header", None) or {}
        cell_id = parent.get("metadata", {}).get("cellId")
        return str(cell_id) if cell_id else None

    def _session(self, name: str, *, new: bool = False) -> Session:
        with self._lock:
            if new or name not in self.sessions:
                self.sessions[name] = Session(name)
            return self.sessions[name]

    def _store(self, options: Options) -> Store:
        path = options.store
        if self._store_instance is None or str(self._store_instance.path) != str(
            path or default_store_path()
        ):
            self._store_instance = Store(path)
        return self._store_instance

    def _logger(
        self, options: Options, session: str, cell_id: str | None, prompt: str
    ) -> Callable[[Transcript], None] | None:
        """What logs a finished turn in the store; a store problem is reported once."""
        if not options.log:
            return None
        store = self._store(options)

        def log(transcript: Transcript) -> None:
            try:
                store.log_turn(session, cell_id, prompt, transcript)
            except StoreError as error:
                if self._store_problem is None:
                    warnings.warn(str(error), stacklevel=1)
                self._store_problem = str(error)

        return log

    # -- commands -----------------------------------------------------------------------
    def _command(self, command: str, rest: list[str], options: Options) -> None:
        if command == "stop":
            stopped = stop_all()
            print(f"stopped {stopped} answer{'s' if stopped != 1 else ''}")
        elif command == "history":
            print(self._session(options.session).to_markdown())
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
            names = _run_sync(list_models(options.provider, options.base_url))
        except (ConfigurationError, StreamError) as error:
            raise UsageError(str(error)) from None
        target = resolve(options.provider, None, options.base_url)
        print(f"{len(names)} models from {target.provider} at {target.base_url}:")
        for name in sorted(names):
            print(f"  {name}")


def _refuse_a_mistyped_command(word: str) -> None:
    """A lone word close to a command is a typo, not a prompt worth paying for."""
    command = _closest(word.lower(), SUBCOMMANDS, _COMMAND_CUTOFF)
    if command:
        raise UsageError(
            f"unknown command {word!r}: did you mean {command!r}? "
            "To send a one-word prompt, write it as a cell: %%chat"
        )


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
