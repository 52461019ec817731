"""The magic's flags and ``%config Chat`` traits, generated from :class:`ipyllm.options.Options`,
and the words it refuses: a mistyped command or option is named, never sent as a prompt."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from traitlets import Bool, Dict, Enum, Float, Integer, TraitType, Unicode, Union
from traitlets.config import Configurable

from ..options import OptionSpec, default_value, option_specs

SUBCOMMANDS = (
    "stop",
    "running",
    "history",
    "reset",
    "export",
    "models",
    "sessions",
    "log",
    "log-export",
)
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
        if spec.repeat:
            kwargs["action"] = "append"
        if spec.kind in ("int", "float"):
            kwargs["type"] = int if spec.kind == "int" else float
        elif spec.kind == "choice":
            kwargs["choices"] = list(spec.choices)
        elif spec.kind in ("dict", "list"):
            kwargs.update(action="append", metavar=spec.metavar)
        elif spec.kind == "value":  # the name of a notebook variable, looked up by the magic
            kwargs["metavar"] = spec.metavar
        elif spec.kind == "replay":
            # The metavar is what %chat? shows: "--replay [fallback]".
            kwargs.update(nargs="?", const=True, type=_replay_value, metavar="fallback")
        func = argument(*flags, **kwargs)(func)
    return func


def _refuse_a_mistyped_command(word: str) -> None:
    """A lone word close to a command is a typo, not a prompt worth paying for."""
    command = _closest(word.lower(), SUBCOMMANDS, _COMMAND_CUTOFF)
    if command:
        raise UsageError(
            f"unknown command {word!r}: did you mean {command!r}? "
            "To send a one-word prompt, write it as a cell: %%chat"
        )
