"""Coverage-guided fuzzing of the stream pipeline with atheris (libFuzzer), on demand.

tests/test_fuzz.py runs hypothesis in CI; this harness runs for as long as asked and
lets libFuzzer's coverage feedback find inputs random generation would not. It checks
the same properties: only ipyllm's own errors, no hang, and the TextDelta events
handed out always equal ``transcript.text``.

An input is two bytes of choices and a body: byte 0 picks the dialect, byte 1 what
to run (the decoder and parser directly, or the whole client over an in-process
transport with a status and content type from byte 2 and 3) and the size of the
pieces the body arrives in. The seed corpus is every capture in ../shared/fixtures.

    pip install atheris
    python benchmarks/fuzz_atheris.py -max_total_time=600 [corpus_dir] [libFuzzer flags]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the properties are the test suite's own

with atheris.instrument_imports(include=["ipyllm"]):
    from ipyllm import IpyllmError, ProtocolError, Transcript
    from ipyllm.dialects import get_dialect
    from ipyllm.events import TextDelta
    from ipyllm.ndjson import LineDecoder
    from ipyllm.sse import ServerSentEvent, SSEDecoder

from tests.conftest import FIXTURES, dialect_of  # noqa: E402
from tests.test_fuzz import CONTENT_TYPES, DIALECTS, STATUSES, _Served, check_event, consume  # noqa: E402

ENDINGS = ["eof", "reset", "protocol", "timeout"]


def decode_and_parse(dialect: str, pieces: list[bytes]) -> None:
    """The decoder and the dialect's parser, as the client drives them."""
    parser = get_dialect(dialect).new_parser()
    transcript = Transcript()
    handed_out: list[str] = []
    sse = SSEDecoder() if get_dialect(dialect).framing == "sse" else None
    lines = LineDecoder()
    try:
        for piece in [*pieces, None]:
            if sse is not None:
                events = sse.feed(piece) if piece is not None else sse.close()
            else:
                texts = lines.feed(piece) if piece is not None else lines.close()
                events = [ServerSentEvent(text) for text in texts]
            for event in events:
                for normalized in parser.parse(event):
                    check_event(normalized)
                    transcript.apply(normalized)
                    if isinstance(normalized, TextDelta):
                        handed_out.append(normalized.text)
    except ProtocolError:
        pass  # the client ends the stream here, keeping the text
    assert transcript.text == "".join(handed_out)


def test_one_input(data: bytes) -> None:
    if len(data) < 4:
        return
    dialect = DIALECTS[data[0] % len(DIALECTS)]
    mode, size = data[1] % 3, data[1] // 3 % 16 + 1
    body = data[4:]
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    if mode == 0:
        decode_and_parse(dialect, pieces)
        return
    if mode == 1:  # a 200 stream with its usual content type
        framing = get_dialect(dialect).framing
        content_type = "application/x-ndjson" if framing == "ndjson" else "text/event-stream"
        response = _Served(200, content_type, {}, pieces, ENDINGS[data[2] % len(ENDINGS)])
    else:
        status = STATUSES[data[2] % len(STATUSES)]
        content_type = CONTENT_TYPES[data[3] % len(CONTENT_TYPES)]
        response = _Served(status, content_type, {}, pieces, ENDINGS[data[3] % len(ENDINGS)])
    try:
        asyncio.run(asyncio.wait_for(consume(dialect, response, through_view=False), 10))
    except IpyllmError:
        raise AssertionError("consume() catches ipyllm's errors itself") from None


def seed_corpus() -> str:
    """The wire captures, each prefixed with the choices that replay it as a 200 stream."""
    folder = tempfile.mkdtemp(prefix="ipyllm-fuzz-")
    if FIXTURES.is_dir():
        for number, path in enumerate(sorted(FIXTURES.glob("*.*"))):
            if path.suffix not in (".sse", ".ndjson"):
                continue
            dialect = DIALECTS.index(dialect_of(path.name))
            for mode in (0, 1):
                prefix = bytes([dialect, mode + 3 * (number % 16), 0, 0])
                Path(folder, f"{path.stem}-{mode}").write_bytes(prefix + path.read_bytes())
    return folder


def main() -> None:
    # libFuzzer writes new inputs to the first corpus folder and only reads the others:
    # the captures are always read, after the caller's folder if there is one.
    args = [*sys.argv, seed_corpus()]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
