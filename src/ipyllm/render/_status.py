"""The one-line summary of an answer: who answered, how fast, how it ended."""

from __future__ import annotations

from ..pricing import format_cost
from ..transcript import Transcript

_CUT_OFF_BY = {
    "max_tokens": " (cut off by the max tokens limit)",
    "content_filter": " (stopped by the content filter)",
}


def who_answered(transcript: Transcript) -> str:
    """Where the answer came from, in words nobody has to correct: the server when it is
    not the provider's own, and the model the server reported, else the one asked for,
    else that none was named. ``demo`` once, never ``demo · demo``."""
    where = transcript.endpoint or transcript.provider
    model = transcript.served_model or (transcript.model if transcript.model_named else None)
    if model is None and transcript.endpoint is not None:
        model = "no model named"
    elif model is None:
        model = transcript.model  # the provider's own default, which it does serve
    return " · ".join(name for name in dict.fromkeys((where, model)) if name)


def status_line(transcript: Transcript) -> str:
    parts = [who_answered(transcript)]
    elapsed = transcript.elapsed
    status = transcript.status
    if status in ("pending", "streaming") and transcript.first_token_at is None:
        parts.append("waiting for the first token" + _seconds(elapsed, " — "))
    elif status == "streaming":
        parts.append("streaming" + _seconds(elapsed, " — "))
    elif status == "done":
        parts.append("done" + _seconds(elapsed, " in "))
    elif status == "stopped":
        parts.append("stopped" + _seconds(elapsed, " after "))
    elif status == "error":
        parts.append("failed" + _seconds(elapsed, " after "))
    ttft = transcript.time_to_first_token
    if ttft is not None:
        parts.append(f"first token {ttft:.2f} s")
    rate = transcript.tokens_per_second
    if rate is not None and transcript.delta_count > 1:
        parts.append(f"{rate:.1f} tok/s")
    if transcript.retries:
        parts.append(f"{transcript.retries} retr{'y' if transcript.retries == 1 else 'ies'}")
    if transcript.finished:
        usage = transcript.usage
        if usage is not None and (
            usage.input_tokens is not None or usage.output_tokens is not None
        ):
            parts.append(
                f"tokens: {_count(usage.input_tokens)} in, {_count(usage.output_tokens)} out"
            )
        if transcript.finish_reason:
            cut_off = transcript.cut_off
            why = _CUT_OFF_BY[cut_off] if cut_off else ""
            parts.append(f"finish: {transcript.finish_reason}{why}")
        if status == "stopped":
            parts.append("partial answer kept")
        # A server that reported usage was paid (or not); a local answer that failed
        # before it began cost nothing worth a word ("free" there reads as a result).
        if transcript.usage is not None or (transcript.cost == 0 and status != "error"):
            parts.append(format_cost(transcript.cost))
    return " · ".join(p for p in parts if p)


def _seconds(value: float | None, joiner: str) -> str:
    # Under 0.05 s the figure would read "0.0 s": no time worth saying.
    return "" if value is None or value < 0.05 else f"{joiner}{value:.1f} s"


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
