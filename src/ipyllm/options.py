"""Layer 0, the options model: every option of an answer, declared once.

:class:`Options` is the single declaration. The ``%%chat`` magic's flags and the
``%config Chat.<name>`` traits are generated from its fields, the API's keyword
arguments are checked against it by a test, and :func:`resolve_options` is the one
place where precedence is decided: the cell's option, then ``%config``, then the
environment, then the default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, TypedDict

from .errors import ConfigurationError

Group = Literal["request", "display", "conversation", "batch"]
# "list": repeatable, each value one more item; "value": any Python value in the API, which
# the magic's flag names as a notebook variable (--schema Answer).
Kind = Literal["str", "int", "float", "bool", "dict", "list", "value", "choice", "replay"]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """How one option is named and parsed wherever it can be given."""

    group: Group
    kind: Kind
    help: str
    flags: tuple[str, ...] = ()
    """The magic's flags; none: not a magic option (an API-only one, or a secret)."""
    config: bool = True
    """Whether ``%config Chat.<name>`` sets it (never for secrets)."""
    env: str | None = None
    """An environment variable that gives it when neither the cell nor %config does."""
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    repeat: bool = False
    """Whether the magic's flag may be repeated, each value another answer (``-m A -m B``)."""


def _option(default: Any, group: Group, kind: Kind, help: str, **spec: Any) -> Any:
    metadata = {"ipyllm": OptionSpec(group, kind, help, **spec)}
    if isinstance(default, dict | list):
        return field(default_factory=type(default), metadata=metadata)
    return field(default=default, metadata=metadata)


PROVIDERS = (
    "openai",
    "openai-completions",
    "openai-responses",
    "anthropic",
    "gemini",
    "ollama",
    "demo",
)


@dataclass(frozen=True)
class Options:
    """The options of an answer; ``None`` means "not chosen": a later layer decides."""

    # -- what is sent --------------------------------------------------------------
    provider: str | None = _option(
        None, "request", "str", ", ".join(PROVIDERS), flags=("-p", "--provider")
    )
    model: str | None = _option(
        None,
        "request",
        "str",
        "model name (default: the provider's); repeat -m to compare models side by side,"
        " and write provider:model to name a provider (-m anthropic:claude-sonnet-4)",
        flags=("-m", "--model"),
        repeat=True,
    )
    base_url: str | None = _option(
        None,
        "request",
        "str",
        "server URL, e.g. http://127.0.0.1:8080/v1 for llama.cpp",
        flags=("--base-url",),
    )
    api_key: str | None = _option(
        None,
        "request",
        "str",
        "API key (default: the provider's environment variable)",
        config=False,
    )
    system: str | None = _option(None, "request", "str", "system prompt", flags=("-s", "--system"))
    temperature: float | None = _option(
        None, "request", "float", "sampling temperature", flags=("-t", "--temperature")
    )
    max_tokens: int | None = _option(
        None, "request", "int", "the longest answer, in tokens", flags=("--max-tokens",)
    )
    params: dict[str, Any] = _option(  # noqa: RUF009 - a field with a default_factory
        {},
        "request",
        "dict",
        "any other request parameter (repeatable): --param top_p=0.9 --param seed=1",
        flags=("--param",),
        metavar="NAME=VALUE",
    )
    max_retries: int = _option(
        2, "request", "int", "attempts after a failure before the stream starts"
    )
    stall_timeout: float = _option(
        60.0, "request", "float", "seconds without a byte before the stream counts as stalled"
    )
    record: bool | None = _option(
        None,
        "request",
        "bool",
        "keep this exchange in the store",
        flags=("--record",),
        env="IPYLLM_RECORD",
    )
    replay: bool | Literal["fallback"] | None = _option(
        None,
        "request",
        "replay",
        "answer from a recording (--replay fallback: from the model when none)",
        flags=("--replay",),
        env="IPYLLM_REPLAY",
    )
    replay_speed: float | None = _option(
        None,
        "request",
        "float",
        "0: at once, 1: the recorded pace, N: N times faster",
        flags=("--replay-speed",),
        env="IPYLLM_REPLAY_SPEED",
    )
    prices: dict[str, Any] = _option(  # noqa: RUF009 - a field with a default_factory
        {},
        "request",
        "dict",
        "your own prices in US dollars per million tokens:"
        " {'my-model': {'input': 0.5, 'output': 1.5}}",
    )
    store: str | None = _option(
        None,
        "request",
        "str",
        "SQLite file for recordings and the log (default .ipyllm/store.sqlite3)",
        env="IPYLLM_STORE",
    )
    images: list[Any] = _option(  # noqa: RUF009 - a field with a default_factory
        [],
        "request",
        "list",
        "an image to send with the prompt (repeatable): a file, or in Python also bytes, a"
        " matplotlib Figure, a PIL or IPython Image",
        flags=("--image",),
        config=False,
        metavar="PATH",
    )
    schema: Any = _option(  # noqa: RUF009 - Any: no default to infer a type from
        None,
        "request",
        "value",
        "answer as JSON fitting this schema: a JSON Schema dict or a pydantic model class"
        " (the magic names a variable: --schema Answer); the answer's transcript.parsed holds"
        " the value",
        flags=("--schema",),
        config=False,
        metavar="NAME",
    )
    # -- how it is shown -----------------------------------------------------------
    format: Literal["markdown", "text"] = _option(
        "markdown",
        "display",
        "choice",
        "how to show the answer",
        flags=("--format",),
        choices=("markdown", "text"),
    )
    events: bool = _option(
        False, "display", "bool", "show the raw wire events", flags=("--events",)
    )
    max_height: str | None = _option(
        None, "display", "str", "CSS height limit of the answer, e.g. '30em'"
    )
    wait: bool | None = _option(
        None,
        "display",
        "bool",
        "wait for the whole answer (default: only where nobody can click)",
        flags=("--wait",),
    )
    # -- the conversation ------------------------------------------------------------
    session: str = _option(
        "default", "conversation", "str", "conversation name", flags=("--session",)
    )
    history: bool = _option(
        True, "conversation", "bool", "send the session's earlier turns", flags=("--history",)
    )
    interpolate: bool = _option(
        True,
        "conversation",
        "bool",
        "fill in {name} from the notebook's variables",
        flags=("--interpolate",),
    )
    table_rows: int = _option(
        20, "conversation", "int", "rows of a DataFrame put into a prompt by {name}: head and tail"
    )
    table_chars: int = _option(
        4000, "conversation", "int", "characters of a table put into a prompt by {name}, at most"
    )
    context_window: int | None = _option(
        None, "conversation", "int", "tokens the model accepts (default: guessed from its name)"
    )
    log: bool = _option(True, "conversation", "bool", "log every turn in the store")
    # -- many answers ----------------------------------------------------------------
    concurrency: int = _option(
        8, "batch", "int", "answers open at once over the rows of --over", flags=("--concurrency",)
    )

    def request_params(self) -> dict[str, Any]:
        """The request's parameters: ``params`` with temperature and max_tokens over them."""
        params = dict(self.params)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params


# Read once: a map resolves options for every row.
_FIELDS = {f.name: f for f in fields(Options)}
_SPECS: dict[str, OptionSpec] = {name: f.metadata["ipyllm"] for name, f in _FIELDS.items()}


class StreamOptions(TypedDict, total=False):
    """The request options as keyword arguments (a test keeps it equal to ``Options``)."""

    provider: str | None
    model: str | None
    base_url: str | None
    api_key: str | None
    system: str | None
    temperature: float | None
    max_tokens: int | None
    params: dict[str, Any] | None
    max_retries: int | None
    stall_timeout: float | None
    record: bool | None
    replay: bool | Literal["fallback"] | None
    replay_speed: float | None
    prices: dict[str, Any] | None
    store: Any
    images: list[Any] | None
    schema: Any


def option_specs(group: Group | None = None) -> dict[str, OptionSpec]:
    """Every option's spec by name, in declaration order (only ``group``'s if given)."""
    return {name: spec for name, spec in _SPECS.items() if group is None or spec.group == group}


def default_value(name: str) -> Any:
    field_ = _FIELDS[name]
    if field_.default_factory is not MISSING:
        return field_.default_factory()
    return field_.default


def resolve_options(
    cell: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Options:
    """The one precedence rule: the cell's option, then %config, then the environment, then
    the default. ``None`` means "not given" at every level. ``params`` merge, the cell's
    over %config's.
    """
    cell = cell or {}
    config = config or {}
    env = os.environ if env is None else env
    unknown = set(cell) - _SPECS.keys()
    if unknown:
        raise ConfigurationError(f"unknown option: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, spec in _SPECS.items():
        if spec.kind == "dict":
            values[name] = {**(config.get(name) or {}), **(cell.get(name) or {})}
            continue
        value = cell.get(name)
        if value is None:
            value = config.get(name)
        if value is None and spec.env and env.get(spec.env):
            value = parse_env(spec, env[spec.env])
        values[name] = default_value(name) if value is None else value
    return Options(**values)


def parse_env(spec: OptionSpec, text: str) -> Any:
    """An environment variable's text as the option's value."""
    text = text.strip()
    if spec.kind == "replay" and text.lower() == "fallback":
        return "fallback"
    if spec.kind in ("bool", "replay"):
        return text.lower() in ("1", "true", "yes", "on")
    if spec.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(f"{spec.env} must be a number, not {text!r}") from None
    return text


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from ``--param``: JSON values (numbers, true, lists), else a string."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise ConfigurationError(f"--param takes NAME=VALUE, not {text!r}")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value  # a bare word is a string


__all__ = [
    "PROVIDERS",
    "OptionSpec",
    "Options",
    "StreamOptions",
    "option_specs",
    "parse_param",
    "resolve_options",
]
