"""``%%chat`` and ``%chat``: parse the line into options, then call the public API."""

from __future__ import annotations

import argparse
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets.config import Configurable

import ipyllm

from .._chat import chat
from .._many import parse_target
from ..client import Target, image_parts, resolve
from ..client.store import Store, default_store_path
from ..conversation import Session, Turn, fill, history_messages, prompt_budget
from ..errors import AuthenticationError, ConfigurationError, StoreError
from ..options import Options, option_specs, parse_param, resolve_options
from ..transcript import Transcript
from ._commands import Commands
from ._flags import SUBCOMMANDS, _explain_usage, _refuse_a_mistyped_command, _with_option_flags


@magics_class
class ChatMagics(Magics, Commands):
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
    @argument(
        "--over",
        metavar="NAME",
        help="send the cell once per row of NAME (a DataFrame, a list...): {column} or {item}",
    )
    @argument("--into", metavar="COLUMN", help="with --over: write the answers into COLUMN")
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
            if args.into and not args.over:
                raise UsageError("--into names the column --over writes its answers into")
            if args.over:
                self._ask_over(prompt.strip("\n"), args, options)
            elif args.model and len(args.model) > 1:
                self._ask_compare(prompt.strip("\n"), args, options)
            else:
                self._ask(prompt.strip("\n"), args, options)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None

    def _options(self, args: argparse.Namespace) -> Options:
        """The options of this cell: its flags over %config over the environment."""
        specs = option_specs()
        cell = {name: getattr(args, name) for name, spec in specs.items() if spec.flags}
        models = cell["model"] or []
        cell["model"] = models[0] if len(models) == 1 else None  # several: a comparison
        cell["params"] = dict(parse_param(text) for text in args.params or [])
        config = {name: getattr(self.settings, name) for name, spec in specs.items() if spec.config}
        return resolve_options(cell, config)

    # -- asking -----------------------------------------------------------------------
    def _ask(self, prompt: str, args: argparse.Namespace, options: Options) -> None:
        turn = self._pending_turn(prompt, args, options)
        # The model decides the history budget; keys are checked when the stream is made.
        target = resolve(options.provider, options.model, options.base_url, require_key=False)
        _refuse_a_missing_key(target)
        budget = prompt_budget(target.model, options.max_tokens, options.context_window)
        messages, dropped = turn.messages(options.system, budget)
        notes = []
        if dropped:
            turns = "turn" if dropped == 1 else "turns"
            notes.append(
                f"The {dropped} oldest {turns} of session '{turn.session.name}' were left out "
                f"to fit {target.model}'s context window."
            )
        result = chat(
            messages,
            notes=notes,
            on_done=self._logger(options, turn.session.name, turn.cell_id, turn.prompt),
            error_hint=_key_hint(target.dialect.api_key_env),
            **_display_options(options),
            **self._request_options(options),
        )
        self._keep(turn, result.transcript)
        self._bind(args, result)

    def _ask_compare(self, prompt: str, args: argparse.Namespace, options: Options) -> None:
        """Several models, side by side. History goes to each of them; the turn that
        enters the session is the prompt with the first model's answer."""
        turn = self._pending_turn(prompt, args, options)
        budget = min(
            prompt_budget(target.get("model") or "", options.max_tokens, options.context_window)
            for target in map(parse_target, args.model)
        )
        messages, dropped = turn.messages(options.system, budget)
        notes = [f"The {dropped} oldest turns were left out to fit the context."] if dropped else []
        request = self._request_options(options)
        request.pop("model")
        result = ipyllm.compare(
            messages, *args.model, notes=notes, **_display_options(options), **request
        )
        first = result.transcripts[0]
        if first is not None:
            self._keep(turn, first)
        self._bind(args, result)

    def _pending_turn(self, prompt: str, args: argparse.Namespace, options: Options) -> _Pending:
        """The prompt filled in, its session, and where its turn goes in it (a cell run
        again replaces its own turn): what an answer with history starts from."""
        prompt, images = self._filled(prompt, options)
        session = self._session(options.session, new=args.new)
        cell_id = self._cell_id()
        with self._lock:
            position = session.position_for(cell_id, prompt)
            earlier = session.turns[:position] if options.history else []
        return _Pending(session, position, cell_id, prompt, images, earlier)

    def _keep(self, turn: _Pending, transcript: Transcript) -> None:
        """The answered turn enters its session."""
        with self._lock:
            turn.session.put(
                turn.position, Turn(turn.prompt, transcript, turn.cell_id, turn.images)
            )

    def _ask_over(self, template: str, args: argparse.Namespace, options: Options) -> None:
        """The cell as a template, sent once per row of a variable (no history)."""
        assert self.shell is not None
        namespace = self.shell.user_ns
        if args.over not in namespace:
            raise UsageError(f"--over {args.over}: there is no variable named {args.over!r}")
        rows = namespace[args.over]
        on_done = _writer_into(rows, args.into) if args.into else None
        result = ipyllm.map(
            template,
            rows,
            concurrency=options.concurrency,
            wait=options.wait,
            namespace=namespace if options.interpolate else {},
            on_done=on_done,
            table_rows=options.table_rows,
            table_chars=options.table_chars,
            **self._request_options(options),
            images=image_parts(options.images),  # encoded once, sent with every row
        )
        self._bind(args, result)

    def _request_options(self, options: Options) -> dict[str, Any]:
        """What is sent, as the API's keyword arguments (the system prompt is in the
        messages already; keys come from the environment or %config, never a cell)."""
        # Images are in the messages already (see _filled).
        names = [n for n in option_specs("request") if n not in ("system", "api_key", "images")]
        request = {name: getattr(options, name) for name in names}
        request["store"] = self._store(options)
        request["schema"] = self._schema(options.schema)
        return request

    def _filled(self, prompt: str, options: Options) -> tuple[str, list[dict[str, Any]]]:
        """The prompt with ``{name}`` filled in (tables within the table budget, figures and
        images as images), and every image it sends: those it names, then ``--image``
        files, each encoded once."""
        assert self.shell is not None
        images: list[dict[str, Any]] = []
        if options.interpolate:
            filled = fill(
                prompt,
                self.shell.user_ns,
                table_rows=options.table_rows,
                table_chars=options.table_chars,
            )
            prompt, images = filled.text, filled.images
        return prompt, images + image_parts(options.images)

    def _schema(self, name: Any) -> Any:
        """``--schema NAME``: the notebook's variable of that name (a dict or a model class)."""
        if not isinstance(name, str):
            return name  # None, or a value given through the API
        assert self.shell is not None
        if name not in self.shell.user_ns:
            raise UsageError(
                f"--schema {name}: there is no variable named {name!r} "
                "(it names a JSON Schema dict or a pydantic model class)"
            )
        return self.shell.user_ns[name]

    def _bind(self, args: argparse.Namespace, result: Any) -> None:
        assert self.shell is not None
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


@dataclass
class _Pending:
    """A prompt about to be sent in a session, and the turns before it."""

    session: Session
    position: int
    cell_id: str | None
    prompt: str
    images: list[dict[str, Any]]
    earlier: list[Turn]

    def messages(self, system: str | None, budget: int) -> tuple[list[dict[str, Any]], int]:
        """The history, the system prompt and the prompt, within ``budget``; and how many
        of the oldest turns were left out to fit it."""
        return history_messages(
            self.earlier, system, self.prompt, budget=budget, images=self.images
        )


def _display_options(options: Options) -> dict[str, Any]:
    """How the answer is shown, as the API's keyword arguments."""
    return {name: getattr(options, name) for name in option_specs("display")}


def _refuse_a_missing_key(target: Target) -> None:
    """The provider's own service needs a key; in a notebook it comes from the environment
    (the API's ``api_key=`` is no option here), so say that, before anything is sent."""
    env = target.dialect.api_key_env
    if env and not target.api_key and target.endpoint is None:
        raise UsageError(
            f"no API key for {target.provider}: set {env} in the environment the kernel "
            "started from, then restart the kernel (or choose a server with --base-url)"
        )


def _key_hint(env: str | None) -> Callable[[BaseException], str | None]:
    """What works in a notebook when a key is refused: keys are never a cell's text or a
    %config option, by design, so the environment the kernel started from."""

    def hint(error: BaseException) -> str | None:
        if not isinstance(error, AuthenticationError):
            return None
        where = f"Set {env}" if env else "Set the key"
        return f"{where} in the environment the kernel started from, then restart the kernel."

    return hint


def _writer_into(rows: Any, column: str) -> Callable[[list[Transcript]], None]:
    """What writes the answers into ``rows[column]`` once every row has ended."""

    def write(transcripts: list[Transcript]) -> None:
        answers = [t.text for t in transcripts]
        if hasattr(rows, "columns") and hasattr(rows, "index"):  # a DataFrame
            rows[column] = answers
        else:
            for row, answer in zip(rows, answers, strict=False):
                if isinstance(row, dict):
                    row[column] = answer

    return write
