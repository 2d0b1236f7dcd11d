"""The single journal writer: events queue up from any thread and are committed in batches.

A batch is committed when it holds 1,000 events or its first event is 50 ms old, so a
`kill -9` loses at most the last batch; WAL keeps the file sound whatever happens.

The emitting thread only appends a row of plain values (the payload already JSON); the
writer thread hands each batch to SQLite as one JSON array, so SQLite inserts the rows and
their full-text entries without holding the GIL row by row.
"""
from __future__ import annotations

import itertools
import threading
from collections import deque
from pathlib import Path
from typing import Any

from ..events import Event, to_json
from .store import open_for_writing

BATCH_EVENTS = 1000
BATCH_SECONDS = 0.05
_STOP = object()

_COLUMNS = "seq, wall, mono, kind, mad, conversation, correlation_id, code, payload"
_INSERT_EVENTS = (
    f"INSERT INTO events({_COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(9))
    + " FROM json_each(?)"
)
_INSERT_FTS = (
    "INSERT INTO messages_fts(rowid, content, sender, conversation) "
    "SELECT seq, coalesce(json_extract(payload, '$.message.content'), ''), "
    "json_extract(payload, '$.message.sender'), conversation FROM events "
    "WHERE seq IN (SELECT json_extract(value, '$[0]') FROM json_each(?1) "
    "WHERE json_extract(value, '$[3]') = 'message') AND json_valid(payload)"
)


def _json(value: Any) -> str:
    return to_json(value)


class JournalWriter:
    """An event sink that appends every event to one SQLite journal, from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = open_for_writing(self.path)
        last = self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self._seq = itertools.count(last + 1)
        self._pending: deque[Any] = deque()
        self._wake = threading.Event()
        self.code: dict[str, str] = {}
        """Each MAD's current module hash, stamped on its events."""
        self.committed_seq = last
        self.batches = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mad-journal", daemon=True)
        self._thread.start()

    # from any thread -------------------------------------------------------
    def handle(self, event: Event) -> None:
        text = event.payload_json
        if text is None:  # serialised now, so later changes to the payload's objects are not recorded
            text = _json(event.payload)
        pending = self._pending
        pending.append((next(self._seq), event.wall, event.mono, event.kind, event.mad, event.conversation,
                        event.correlation_id, self.code.get(event.mad or ""), text))
        if len(pending) >= BATCH_EVENTS and not self._wake.is_set():
            self._wake.set()

    def set_meta(self, key: str, value: Any) -> None:
        self._pending.append(("meta", key, _json(value)))

    def add_module(self, sha256: str, name: str, path: str, mads: list[str], source: str) -> None:
        """Keep a module's source once; its MADs' events from now on name this hash."""
        for mad in mads:
            self.code[mad] = sha256
        self._pending.append(("module", sha256, name, path, _json(mads), source))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is committed."""
        done = threading.Event()
        self._pending.append(("flush", done))
        self._wake.set()
        done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._pending.append(_STOP)
            self._wake.set()
            self._thread.join(timeout=10)
        self._conn.close()

    # the writer thread -----------------------------------------------------
    def _run(self) -> None:
        pending = self._pending
        wake = self._wake
        while True:
            wake.wait(BATCH_SECONDS)  # woken early by a full batch, a flush or close
            wake.clear()
            while pending:
                batch: list[Any] = []
                events = 0
                while pending and events < BATCH_EVENTS:
                    item = pending.popleft()
                    if item is _STOP:
                        self._write(batch)
                        return
                    batch.append(item)
                    if isinstance(item[0], int):
                        events += 1
                self._write(batch)

    def _write(self, batch: list[Any]) -> None:
        rows = [item for item in batch if isinstance(item[0], int)]
        other = [item for item in batch if not isinstance(item[0], int)]
        conn = self._conn
        try:
            conn.execute("BEGIN")
            for item in other:
                if item[0] == "meta":
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (item[1], item[2]))
                elif item[0] == "module":
                    _, sha, name, path, mads, source = item
                    conn.execute(
                        "INSERT OR IGNORE INTO modules(sha256, name, path, mads, source, first_seq) "
                        "VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM events))",
                        (sha, name, path, mads, source))
            if rows:
                text = _json(rows)
                conn.execute(_INSERT_EVENTS, (text,))
                conn.execute(_INSERT_FTS, (text,))
            conn.execute("COMMIT")
            self.batches += 1
            if rows:
                self.committed_seq = max(self.committed_seq, max(row[0] for row in rows))
        except Exception as exc:  # the journal must never take the ecosystem down
            self.error = f"{type(exc).__name__}: {exc}"
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        for item in other:
            if item[0] == "flush":
                item[1].set()
