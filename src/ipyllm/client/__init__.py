"""Layer 4, the HTTP client: requests out, normalized deltas in, one Transcript per answer.

The client is the only writer of a :class:`~ipyllm.Transcript`: :class:`Stream`
for an answer read from a server, :class:`SourceStream` for any other async stream.
Its private modules each hold one concern: target resolution (``_target``),
retries (``_retry``), error bodies (``_responses``), framing (``_framing``), the
stream itself (``_stream``), record and replay as httpx transports (``_replay``,
``_store``), images encoded for a prompt (``_images``), a structured answer parsed
and checked against its schema at its end (``_structured``). A new transport is an
``httpx`` transport chosen here: :class:`SocketTransport`, sockets on asyncio's own
transports (``_sockets``), is the one a stream uses by default; :class:`FetchTransport`,
the browser's ``fetch``, the one in Pyodide (JupyterLite), where no socket exists.
"""

from __future__ import annotations

from ._api import achat, list_models, normalize_messages, stream
from ._fetch import FetchTransport
from ._framing import FramingDecoder, JSONLine
from ._images import image_part, image_parts, is_image, media_type_of
from ._pool import shared_client, shared_connections
from ._responses import error_details
from ._retry import retry_after
from ._sockets import SocketTransport
from ._sources import Source, SourceStream, as_source, failed_source, to_events
from ._stream import Stream
from ._structured import schema_problems
from ._target import Target, resolve

__all__ = [
    "FetchTransport",
    "FramingDecoder",
    "JSONLine",
    "SocketTransport",
    "Source",
    "SourceStream",
    "Stream",
    "Target",
    "achat",
    "as_source",
    "error_details",
    "failed_source",
    "image_part",
    "image_parts",
    "is_image",
    "list_models",
    "media_type_of",
    "normalize_messages",
    "resolve",
    "retry_after",
    "schema_problems",
    "shared_client",
    "shared_connections",
    "stream",
    "to_events",
]
