"""The shape of the code: layers import only downward, the public surface is what we say,
the transcript has one writer, options are declared once, and imports stay light.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

import ipyllm

SRC = Path(ipyllm.__file__).parent

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"_version", "_json", "_redact", "_text", "events", "errors", "options"}),
    ("wire", {"sse", "ndjson"}),
    ("dialects", {"dialects"}),
    ("transcript", {"transcript"}),
    ("pricing", {"pricing"}),
    ("client", {"client"}),
    ("render", {"render"}),
    ("views", {"views"}),
    ("runner", {"runner"}),
    ("api", {"_chat", "_many", "conversation"}),
    ("shell", {"magic", "__init__"}),
    # The teaching server is an application of its own on top of everything.
    ("server", {"server"}),
    # So is the JupyterLite site builder (python -m ipyllm.lite).
    ("lite", {"lite"}),
]
LAYER_OF = {part: index for index, (_name, parts) in enumerate(LAYERS) for part in parts}

# Imports that go against the order on purpose, each with its reason.
ALLOWED_UPWARD = {
    # The demo provider loads the teaching server lazily, inside a function.
    ("dialects", "server"),
}
# Layers that must know nothing of HTTP, even though the client sits below them.
FORBIDDEN = {
    ("render", "client"),
    ("render", "dialects"),
    ("views", "client"),
    ("views", "dialects"),
    ("views", "sse"),
    ("views", "ndjson"),
}
NO_HTTP = {
    "render", "views", "transcript", "pricing", "events", "errors", "options", "sse", "ndjson"
}  # fmt: skip


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        yield ".".join(("ipyllm", *parts)), path


def top_part(module: str) -> str:
    """``ipyllm.client._stream`` -> ``client``; ``ipyllm`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def runtime_imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Modules imported at run time (``if TYPE_CHECKING:`` blocks carry no dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # "from . import runner" imports a module too
                yield f"{target}.{alias.name}", node.lineno


def test_every_module_has_a_layer() -> None:
    unknown = {top_part(module) for module, _ in modules()} - set(LAYER_OF)
    assert not unknown, f"put these in a layer of LAYERS: {unknown}"


def test_layers_import_only_downward() -> None:
    wrong = []
    for module, path in modules():
        source = top_part(module)
        for target, line in runtime_imports(module, path):
            if not target.startswith("ipyllm.") or target.split(".")[1] not in LAYER_OF:
                continue
            dest = top_part(target)
            upward = LAYER_OF[dest] > LAYER_OF[source]
            if (upward and (source, dest) not in ALLOWED_UPWARD) or (source, dest) in FORBIDDEN:
                wrong.append(f"{path.relative_to(SRC)}:{line} {source} -> {dest} ({target})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_views_and_rendering_know_nothing_of_http() -> None:
    wrong = [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for module, path in modules()
        if top_part(module) in NO_HTTP
        for target, line in runtime_imports(module, path)
        if target.split(".")[0] in ("httpx", "httpcore", "socket")
    ]
    assert not wrong, "\n".join(wrong)


TRANSCRIPT_WRITES = {"apply", "start", "end"}


def transcript_writes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Calls of a transcript's writing methods and assignments to a transcript's fields."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if receiver.endswith("transcript") and node.func.attr in TRANSCRIPT_WRITES:
                yield node.lineno, ast.unparse(node.func)
            if receiver.endswith("transcript.notes") and node.func.attr in ("append", "extend"):
                yield node.lineno, ast.unparse(node.func)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and ast.unparse(target.value).endswith(
                "transcript"
            ):
                yield node.lineno, ast.unparse(target)


def test_the_client_is_the_only_writer_of_a_transcript() -> None:
    writers = {
        f"{path.relative_to(SRC)}:{line} {what}"
        for module, path in modules()
        if top_part(module) not in ("client", "transcript")
        for line, what in transcript_writes(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert not writers, "transcripts written outside the client:\n" + "\n".join(sorted(writers))
    # ...and the check does see writes where they are
    client_writes = [
        what
        for module, path in modules()
        if top_part(module) == "client"
        for _line, what in transcript_writes(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert {"transcript.apply", "transcript.end", "transcript.start"} <= set(client_writes)


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(SRC)): lines
        for _module, path in modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert not long, f"split these by concern: {long}"


def test_each_package_says_what_it_is() -> None:
    for init in SRC.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init.relative_to(SRC)} needs a docstring"


# -- the public surface -----------------------------------------------------------------
PUBLIC = [
    "AuthenticationError",
    "ChatResult",
    "ChatView",
    "Comparison",
    "ConfigurationError",
    "ConnectError",
    "HTTPStatusError",
    "InterpolationError",
    "IpyllmError",
    "MapResult",
    "Options",
    "ProtocolError",
    "ProviderError",
    "RateLimitError",
    "ReplayMissError",
    "StalledError",
    "StoreError",
    "Stream",
    "StreamError",
    "StreamingMarkdown",
    "StructuredOutputError",
    "ToolCall",
    "Transcript",
    "TruncatedError",
    "Usage",
    "__version__",
    "achat",
    "chat",
    "compare",
    "last",
    "list_models",
    "load_ipython_extension",
    "map",
    "render_markdown",
    "stop_all",
    "stream",
]


def test_public_surface() -> None:
    assert sorted(ipyllm.__all__) == PUBLIC
    for name in ipyllm.__all__:
        getattr(ipyllm, name)  # lazily loaded names resolve too
    public = {
        name
        for name, value in vars(ipyllm).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(PUBLIC) - {"__version__"}


def test_every_exception_is_exported_from_ipyllm() -> None:
    import ipyllm.errors

    classes = {
        name
        for name, value in vars(ipyllm.errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert classes == set(ipyllm.errors.__all__)
    assert classes <= set(ipyllm.__all__)
    for name in classes:
        assert name in (ipyllm.errors.__doc__ or ""), f"{name} missing from the tree"


@pytest.mark.parametrize(
    "package",
    ["client", "conversation", "dialects", "errors", "events", "lite", "options", "render",
     "runner", "server", "sse", "ndjson", "views", "magic"],
)  # fmt: skip
def test_public_packages_export_what_they_define(package: str) -> None:
    import importlib

    module = importlib.import_module(f"ipyllm.{package}")
    assert all(not name.startswith("_") for name in module.__all__)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


# -- options, declared once ---------------------------------------------------------------
def test_magic_flags_and_config_traits_come_from_the_options() -> None:
    from ipyllm.magic import Chat, ChatMagics
    from ipyllm.options import Options, option_specs

    parser = ChatMagics.chat.parser  # built by IPython's magic_arguments
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for name, spec in option_specs().items():
        for flag in spec.flags:
            assert flag in flags, (name, flag)
    declared = {flag for spec in option_specs().values() for flag in spec.flags}
    negations = {f"--no-{flag[2:]}" for flag in declared if flag.startswith("--")}
    own = {"--new", "-o", "--out", "--over", "--into"}  # actions of the magic, not options
    assert flags - declared - negations == own
    traits = set(Chat.class_trait_names(config=True))
    assert traits == {name for name, spec in option_specs().items() if spec.config}
    assert "api_key" not in traits  # secrets never go through %config
    assert len(fields(Options)) == len(option_specs())


def test_api_keywords_match_the_options() -> None:
    from ipyllm.options import StreamOptions, option_specs

    request = set(option_specs("request"))
    stream_keywords = {
        name
        for name, param in inspect.signature(ipyllm.stream).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert stream_keywords == request | {"raw"}
    assert set(StreamOptions.__annotations__) == request
    chat_keywords = {
        name
        for name, param in inspect.signature(ipyllm.chat).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert chat_keywords == set(option_specs("display")) | {"notes", "on_done", "error_hint"}


def test_one_precedence_rule() -> None:
    from ipyllm.options import resolve_options

    env = {"IPYLLM_REPLAY": "fallback", "IPYLLM_REPLAY_SPEED": "4", "IPYLLM_RECORD": "1"}
    options = resolve_options(
        {"model": "from-cell", "params": {"seed": 1}},
        {"model": "from-config", "provider": "ollama", "replay_speed": 2.0, "params": {"a": 1}},
        env,
    )
    assert options.model == "from-cell"  # cell over %config
    assert options.provider == "ollama"  # %config where the cell says nothing
    assert options.replay_speed == 2.0  # %config over the environment
    assert options.replay == "fallback" and options.record is True  # the environment
    assert options.format == "markdown" and options.history is True  # defaults
    assert options.params == {"a": 1, "seed": 1}
    with pytest.raises(ipyllm.ConfigurationError, match="IPYLLM_REPLAY_SPEED"):
        resolve_options(env={"IPYLLM_REPLAY_SPEED": "fast"})


# -- light imports ------------------------------------------------------------------------
HEAVY = ("IPython", "ipywidgets", "sqlite3", "ipyllm.server", "ipyllm.views", "traitlets")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "statement", ["import ipyllm.sse", "import ipyllm.ndjson", "import ipyllm.events",
                  "import ipyllm", "import ipyllm; ipyllm.stream('hi')"],
)  # fmt: skip
def test_light_imports(statement: str) -> None:
    loaded = loaded_after(statement)
    heavy = sorted(name for name in loaded if name.startswith(HEAVY))
    assert not heavy, f"{statement} loads {heavy}"


def test_widgets_load_on_first_use() -> None:
    loaded = loaded_after("import ipyllm; ipyllm.ChatView")
    assert "ipywidgets" in loaded and "ipyllm.views" in loaded
