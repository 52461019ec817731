"""Layer 8, many answers at once: models side by side (``compare``) and a prompt over every
row (``map``). Both return a handle at once; the runner drives every stream, at most
``concurrency`` open together, with one Stop for all.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from . import runner
from .client import Source, failed_source, image_parts, resolve, stream
from .conversation import fill
from .dialects import Message
from .errors import ConfigurationError, IpyllmError
from .options import PROVIDERS
from .transcript import Transcript
from .views import ColumnsView, ProgressView, TerminalBatch

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import StreamOptions

Target = str | Mapping[str, Any]


def parse_target(target: Target) -> dict[str, Any]:
    """A target's stream options: ``"gpt-4o"``, ``"anthropic:claude-..."`` (a provider,
    a colon, a model), or a dict of options. A colon after anything else is part of the
    model's name, so Ollama's ``llama3.2:1b`` stays one model."""
    if isinstance(target, str):
        provider, colon, model = target.partition(":")
        if colon and provider in PROVIDERS:
            return {"provider": provider, "model": model or None}
        return {"model": target}
    return dict(target)


def _merged(common: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    options = {**common, **target}
    if "params" in common and "params" in target:
        options["params"] = {**common["params"], **target["params"]}
    return options


class Answers:
    """A handle on many answers: ``await`` it for the transcripts in order, ``stop()`` them."""

    def __init__(self, batch: runner.Batch, view: Any) -> None:
        self.batch = batch
        self.view = view

    @property
    def transcripts(self) -> list[Transcript | None]:
        """Each answer's transcript so far, in order (``None``: not started yet)."""
        return self.batch.transcripts

    @property
    def done(self) -> bool:
        return self.batch.done

    def stop(self) -> None:
        """Stop every answer still running or queued; finished ones are kept."""
        self.batch.stop()

    def __await__(self) -> Generator[Any, None, list[Transcript]]:
        return self.batch.__await__()

    def __repr__(self) -> str:
        states = [t.status if t is not None else "queued" for t in self.transcripts]
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
        return f"<{type(self).__name__} {len(states)} answers: {counts}>"


class Comparison(Answers):
    """The handle :func:`compare` returns; ``texts`` are the answers so far, in target order."""

    def __init__(self, batch: runner.Batch, view: Any, sources: list[Source]) -> None:
        super().__init__(batch, view)
        self._sources = sources

    @property
    def transcripts(self) -> list[Transcript]:  # type: ignore[override]  # none ever queued
        """Every target's transcript, in target order (all exist from the start)."""
        return [source.transcript for source in self._sources]

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.transcripts]


def compare(
    prompt_or_messages: str | list[Message],
    *targets: Target,
    wait: bool | None = None,
    format: Literal["markdown", "text"] = "markdown",
    events: bool = False,
    max_height: str | None = None,
    notes: list[str] | None = None,
    on_done: Callable[[list[Transcript]], None] | None = None,
    **common: Unpack[StreamOptions],
) -> Comparison:
    """Ask several models the same thing at once and show their answers side by side.

    Each target is a model name, ``"provider:model"``, or a dict of stream options
    (``provider``, ``model``, ``base_url``, ``api_key``, ``params``...), over ``common``.
    Returns at once; ``await`` the result for the transcripts in target order.
    Configuration errors (an unknown provider, a missing key) raise here, before
    anything is sent.
    """
    if not targets:
        raise ConfigurationError("compare needs at least one target (a model name or a dict)")
    streams = [
        stream(prompt_or_messages, raw=events, **_merged(common, parse_target(t))) for t in targets
    ]
    titles = [" · ".join(filter(None, (s.target.provider, s.target.model))) for s in streams]
    mode = runner.run_mode(wait)
    view: Any
    if mode == "terminal":
        view = TerminalBatch(titles)
    else:
        view = ColumnsView(titles, format=format, events=events, max_height=max_height, notes=notes)
        view.display(fallback=mode == "background")
    batch = _run(len(streams), streams.__getitem__, view, len(streams), mode, on_done)
    return Comparison(batch, view, list(streams))


class MapResult(Answers):
    """The handle :func:`map` returns: the answers in input order, and a table of them."""

    def __init__(self, batch: runner.Batch, view: Any, rows: list[Any], frame: Any) -> None:
        super().__init__(batch, view)
        self.rows = rows
        self._frame = frame

    def to_frame(self) -> Any:
        """A pandas DataFrame: the input columns, then (answers asked for with a schema)
        one column per field of the parsed answers, then ``answer``, ``status``,
        ``finish_reason``, ``input_tokens``, ``output_tokens``, ``cost``, ``error``.

        A field named like an input column is ``<name>_parsed``; a row whose answer
        failed has missing values in the field columns."""
        import pandas as pd

        if self._frame is not None:
            table = self._frame.reset_index(drop=True).copy()
        elif self.rows and all(isinstance(row, Mapping) for row in self.rows):
            table = pd.DataFrame([dict(row) for row in self.rows])
        else:
            table = pd.DataFrame({"item": self.rows})
        for name, values in _parsed_columns(self.transcripts).items():
            column = f"{name}_parsed" if name in table.columns else name
            table[column] = pd.array(values)
        results = [_row_result(t) for t in self.transcripts]
        for column in ("answer", "status", "finish_reason"):
            table[column] = pd.Series([r[column] for r in results], dtype="string")
        for column in ("input_tokens", "output_tokens"):
            table[column] = pd.array([r[column] for r in results], dtype="Int64")
        table["cost"] = pd.array([r["cost"] for r in results], dtype="Float64")
        table["error"] = pd.Series([r["error"] for r in results], dtype="string")
        return table


def _parsed_columns(transcripts: list[Transcript | None]) -> dict[str, list[Any]]:
    """The fields of the parsed answers, as columns in row order (a value that is not an
    object, as a column ``parsed``); empty when no answer was asked for with a schema."""
    values = [_as_fields(t.parsed) if t is not None else None for t in transcripts]
    names: dict[str, None] = {}
    for fields in values:
        names.update(dict.fromkeys(fields or {}))
    return {name: [(fields or {}).get(name) for fields in values] for name in names}


def _as_fields(parsed: Any) -> dict[str, Any] | None:
    if parsed is None:
        return None
    dump = getattr(parsed, "model_dump", None)
    if callable(dump) and not isinstance(parsed, type):
        parsed = dump()  # a pydantic instance: its fields, as Python values
    if isinstance(parsed, dict):
        return {str(key): value for key, value in parsed.items()}
    return {"parsed": parsed}


def _row_result(transcript: Transcript | None) -> dict[str, Any]:
    if transcript is None:
        return dict.fromkeys(
            ("answer", "finish_reason", "input_tokens", "output_tokens", "cost", "error"),
        ) | {"status": "queued"}
    usage = transcript.usage
    return {
        "answer": transcript.text,
        "status": transcript.status,
        "finish_reason": transcript.finish_reason,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cost": transcript.cost,
        "error": None if transcript.error is None else str(transcript.error),
    }


def map_rows(
    template: str,
    rows: Iterable[Any],
    *,
    concurrency: int = 8,
    wait: bool | None = None,
    namespace: Mapping[str, Any] | None = None,
    on_done: Callable[[list[Transcript]], None] | None = None,
    table_rows: int | None = None,
    table_chars: int | None = None,
    **stream_options: Unpack[StreamOptions],
) -> MapResult:
    """Fill ``template`` for every row and ask the model each, ``concurrency`` at a time.

    ``{column}`` names a field of a DataFrame row or a dict, ``{item}`` a plain value
    (the same safe rules as ``%%chat``: nothing is evaluated; ``namespace`` adds
    names; a DataFrame shows as a table of at most ``table_rows`` rows and
    ``table_chars`` characters, a figure or image is sent as an image, as are
    ``images``, encoded once for every row). Returns at once; ``await`` the result for
    the transcripts in input order, ``.to_frame()`` for a table (with ``schema=``, one
    column per field of the answers). With recording on, rows already answered are
    replayed from the store and only the rest are sent, so a stopped batch resumes for
    free.
    """
    frame = rows if _is_frame(rows) else None
    items = _row_values(rows)
    options: dict[str, Any] = dict(stream_options)
    common = image_parts(options.pop("images", None))
    if options.get("record") and options.get("replay") is None:
        options["replay"] = "fallback"  # resume: what was answered is not paid twice
    target = resolve(
        options.get("provider"),
        options.get("model"),
        options.get("base_url"),
        options.get("api_key"),
        require_key=not options.get("replay"),
    )

    def make_source(index: int) -> Source:
        names = {**(namespace or {}), **_fields(items[index])}
        try:
            filled = fill(template, names, table_rows=table_rows, table_chars=table_chars)
            return stream(filled.text, images=[*filled.images, *common] or None, **options)
        except IpyllmError as error:  # this row's prompt or options: it fails, others go on
            return failed_source(error, provider=target.provider, model=target.model)

    title = f"{target.provider} · {target.model} over {len(items)} rows"
    mode = runner.run_mode(wait)
    view: Any = TerminalBatch([title]) if mode == "terminal" else ProgressView(title)
    if mode != "terminal":
        view.display(fallback=mode == "background")
    batch = _run(len(items), make_source, view, concurrency, mode, on_done)
    return MapResult(batch, view, items, frame)


def _run(
    count: int,
    make_source: Callable[[int], Source],
    view: Any,
    concurrency: int,
    mode: runner.Mode,
    on_done: Callable[[list[Transcript]], None] | None,
) -> runner.Batch:
    if mode == "background":
        batch = runner.start_batch(count, make_source, view, concurrency)
        if on_done is not None:
            done = on_done
            assert batch._task is not None
            batch._task.add_done_callback(
                lambda task: None if task.cancelled() else done(task.result())
            )
        return batch
    batch = runner.run_batch_blocking(count, make_source, view, concurrency)
    if mode == "blocking":
        view.replace_with_static()
    if on_done is not None:
        on_done([t for t in batch.transcripts if t is not None])
    return batch


def _is_frame(rows: Any) -> bool:
    return hasattr(rows, "iterrows") and hasattr(rows, "columns")


def _row_values(rows: Iterable[Any]) -> list[Any]:
    if _is_frame(rows):
        return [dict(row) for _, row in rows.iterrows()]  # type: ignore[attr-defined]
    if hasattr(rows, "to_list") and hasattr(rows, "index"):  # a pandas Series
        return list(rows.to_list())
    return list(rows)


def _fields(row: Any) -> dict[str, Any]:
    if isinstance(row, Mapping):
        return {str(key): value for key, value in row.items()} | {"item": row}
    return {"item": row}
