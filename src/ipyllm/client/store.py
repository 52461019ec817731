"""A SQLite store of exchanges (to record and replay streams) and of conversation turns.

One file per project by default (``.ipyllm/store.sqlite3`` under the working
directory, or ``IPYLLM_STORE``). WAL journaling lets several kernels write at
once; each exchange is written in one transaction, so a kernel killed mid-write
leaves the file as it was. Secrets are never stored: requests are kept without
headers, and URLs without their query strings. Images are kept once each, by their
sha256, however many requests resend them: a stored request names its images by
``ipyllm-image:sha256:<hex>`` in place of their base64 bytes. Prompts and answers are, so a folder
that the store creates gets a ``.gitignore`` of ``*`` (as pytest does for its cache):
nothing in it reaches a repository by accident.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dialects import image_of
from ..errors import StoreError
from ..transcript import Transcript

DEFAULT_PATH = Path(".ipyllm") / "store.sqlite3"
GITIGNORE = (
    "# Created by ipyllm: its store keeps prompts and answers, so git ignores this folder.\n"
    "# Delete this file to commit recordings (to replay them elsewhere).\n"
    "*\n"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    request_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    response_headers TEXT NOT NULL,
    status TEXT,
    transcript TEXT
);
CREATE INDEX IF NOT EXISTS exchanges_by_key ON exchanges (request_key, created);
CREATE TABLE IF NOT EXISTS chunks (
    exchange_id INTEGER NOT NULL REFERENCES exchanges (id),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (exchange_id, seq)
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    session TEXT NOT NULL,
    cell_id TEXT,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS turns_by_time ON turns (created);
CREATE TABLE IF NOT EXISTS images (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
"""
IMAGE_REFERENCE = "ipyllm-image:sha256:"


def default_store_path() -> Path:
    return Path(os.environ.get("IPYLLM_STORE") or DEFAULT_PATH)


def request_key(
    provider: str,
    model: str,
    messages: list[Any],
    params: dict[str, Any],
    *,
    schema: dict[str, Any] | None = None,
) -> str:
    """What identifies a request for replay: provider, model, messages (images by their
    sha256), parameters, and the schema of a structured answer."""
    named = _with_references(messages, images_of(messages))
    key = [provider, model, named, params] + ([] if schema is None else [schema])
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    media_type: str
    data: bytes


def images_of(messages: list[Any]) -> dict[str, StoredImage]:
    """The inline images of neutral messages, by their base64 text."""
    found: dict[str, StoredImage] = {}
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            image = image_of(part)
            if image is None or not image.data or image.data in found:
                continue
            try:
                data = base64.b64decode(image.data, validate=True)
            except (binascii.Error, ValueError):
                continue
            sha = hashlib.sha256(data).hexdigest()
            found[image.data] = StoredImage(sha, image.media_type, data)
    return found


def _with_references(value: Any, images: dict[str, StoredImage]) -> Any:
    """``value`` with each image's base64 text (bare, or in a data URL) replaced by a
    reference to its sha256, in whatever form a provider's request holds it."""
    if not images:
        return value
    if isinstance(value, str):
        payload = value.partition(";base64,")[2] if value.startswith("data:") else value
        image = images.get(payload)
        return value if image is None else IMAGE_REFERENCE + image.sha256
    if isinstance(value, list):
        return [_with_references(item, images) for item in value]
    if isinstance(value, dict):
        return {key: _with_references(item, images) for key, item in value.items()}
    return value


@dataclass
class Recording:
    """One recorded exchange: the response as it came off the wire, with arrival times."""

    id: int
    http_status: int
    headers: list[tuple[str, str]]
    chunks: list[tuple[float, bytes]]  # (seconds since the request, bytes)


@dataclass
class LoggedTurn:
    created: float
    session: str
    prompt: str
    answer: str
    status: str
    provider: str
    model: str
    error: str | None


class Store:
    """A connection per thread to one SQLite file; every method is safe from any thread."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.timeout = timeout  # how long a write waits for another writer's lock
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _connect(self) -> sqlite3.Connection:
        try:
            self._make_folder()
            connection = sqlite3.connect(self.path, timeout=self.timeout)
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._explain(exc)) from None
        return connection

    def _make_folder(self) -> None:
        """Create the store's folder if needed; one it creates is ignored by git."""
        folder = self.path.parent
        if folder.is_dir():
            return  # the user's, or made before: left as it is
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            return  # another kernel made it just now, and writes the .gitignore
        (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")

    def _explain(self, exc: Exception) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            what = "is not a readable SQLite database (corrupt?)"
        elif "locked" in text or "busy" in text:
            what = "is locked by another process"
        else:
            what = f"cannot be used ({type(exc).__name__}: {text})"
        return (
            f"the ipyllm store at {self.path} {what}; recording and logging are off for this answer"
        )

    def _read(self, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, values).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from None

    # -- exchanges ----------------------------------------------------------------------
    def save_exchange(
        self,
        *,
        key: str,
        transcript: Transcript,
        request: dict[str, Any],
        http_status: int,
        headers: list[tuple[str, str]],
        chunks: list[tuple[float, bytes]],
    ) -> int:
        """Write one exchange and its chunks in a single transaction (its images once)."""
        images = images_of(transcript.messages)
        request = _with_references(request, images)
        record = _with_references(transcript.to_dict(), images)
        connection = self._connection()
        try:
            with connection:
                connection.executemany(
                    "INSERT OR IGNORE INTO images (sha256, media_type, data) VALUES (?, ?, ?)",
                    [(i.sha256, i.media_type, i.data) for i in images.values()],
                )
                cursor = connection.execute(
                    "INSERT INTO exchanges (created, request_key, provider, model, request,"
                    " http_status, response_headers, status, transcript)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        time.time(),
                        key,
                        transcript.provider,
                        transcript.model,
                        json.dumps(request, ensure_ascii=False, default=str),
                        http_status,
                        json.dumps(headers),
                        transcript.status,
                        json.dumps(record, ensure_ascii=False, default=str),
                    ),
                )
                exchange = int(cursor.lastrowid or 0)
                connection.executemany(
                    "INSERT INTO chunks (exchange_id, seq, at, data) VALUES (?, ?, ?, ?)",
                    [(exchange, seq, at, data) for seq, (at, data) in enumerate(chunks)],
                )
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from None
        return exchange

    def find_recording(self, key: str) -> Recording | None:
        """The newest complete recording for a request (a successful one if there is any)."""
        rows = self._read(
            "SELECT id, http_status, response_headers FROM exchanges WHERE request_key = ?"
            " ORDER BY (http_status BETWEEN 200 AND 299 AND status = 'done') DESC, created DESC"
            " LIMIT 1",
            (key,),
        )
        if not rows:
            return None
        exchange, http_status, headers = rows[0]
        chunks = self._read(
            "SELECT at, data FROM chunks WHERE exchange_id = ? ORDER BY seq", (exchange,)
        )
        return Recording(
            id=exchange,
            http_status=http_status,
            headers=[tuple(pair) for pair in json.loads(headers)],
            chunks=[(at, bytes(data)) for at, data in chunks],
        )

    def count_exchanges(self) -> int:
        return int(self._read("SELECT count(*) FROM exchanges")[0][0])

    def count_images(self) -> int:
        """How many images the store holds (each once, however often it was sent)."""
        return int(self._read("SELECT count(*) FROM images")[0][0])

    def load_image(self, reference: str) -> tuple[str, bytes] | None:
        """The media type and bytes of a stored image, by sha256 or by its reference."""
        sha = reference.removeprefix(IMAGE_REFERENCE)
        rows = self._read("SELECT media_type, data FROM images WHERE sha256 = ?", (sha,))
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    # -- the conversation log -------------------------------------------------------------
    def log_turn(
        self, session: str, cell_id: str | None, prompt: str, transcript: Transcript
    ) -> None:
        connection = self._connection()
        try:
            with connection:
                connection.execute(
                    "INSERT INTO turns (created, session, cell_id, prompt, answer, status,"
                    " provider, model, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        time.time(),
                        session,
                        cell_id,
                        prompt,
                        transcript.text,
                        transcript.status,
                        transcript.provider,
                        transcript.model,
                        None if transcript.error is None else str(transcript.error),
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from None

    def turns(self, *, search: str | None = None, limit: int = 20) -> list[LoggedTurn]:
        """The most recent turns, newest last; ``search`` matches prompt or answer text."""
        where = ""
        values: tuple[str, ...] = ()
        if search:
            where = " WHERE prompt LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\'"
            pattern = (
                "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            values = (pattern, pattern)
        rows = self._read(
            "SELECT created, session, prompt, answer, status, provider, model, error FROM turns"
            f"{where} ORDER BY created DESC, id DESC LIMIT ?",
            (*values, limit),
        )
        return [LoggedTurn(*row) for row in reversed(rows)]
