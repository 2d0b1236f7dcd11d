"""The single journal writer: events queue up from any thread and are committed in batches.

A batch is committed when it holds 1,000 events or its first event is 50 ms old, so a
`kill -9` loses at most the last batch; WAL keeps the file sound whatever happens.
"""
from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

from ..events import Event
from .store import open_for_writing

BATCH_EVENTS = 1000
BATCH_SECONDS = 0.05
_STOP = object()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


class JournalWriter:
    """An event sink that appends every event to one SQLite journal, from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = open_for_writing(self.path)
        last = self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self._seq = itertools.count(last + 1)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.code: dict[str, str] = {}
        """Each MAD's current module hash, stamped on its events."""
        self.committed_seq = last
        self.batches = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mad-journal", daemon=True)
        self._thread.start()

    # from any thread -------------------------------------------------------
    def handle(self, event: Event) -> None:
        self._queue.put((next(self._seq), event))

    def set_meta(self, key: str, value: Any) -> None:
        self._queue.put(("meta", key, value))

    def add_module(self, sha256: str, name: str, path: str, mads: list[str], source: str) -> None:
        """Keep a module's source once; its MADs' events from now on name this hash."""
        for mad in mads:
            self.code[mad] = sha256
        self._queue.put(("module", sha256, name, path, mads, source))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is committed."""
        done = threading.Event()
        self._queue.put(("flush", done))
        done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
        self._conn.close()

    # the writer thread -----------------------------------------------------
    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            batch = [item]
            deadline = time.monotonic() + BATCH_SECONDS
            while item is not _STOP and len(batch) < BATCH_EVENTS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = q.get(timeout=remaining)
                except queue.Empty:
                    break
                batch.append(item)
                if item is _STOP or (isinstance(item, tuple) and item[0] == "flush"):
                    break
            self._write(batch)
            if batch[-1] is _STOP:
                return

    def _write(self, batch: list[Any]) -> None:
        rows = []
        fts = []
        other = []
        code = self.code
        for item in batch:
            if item is _STOP:
                continue
            if isinstance(item[0], int):
                seq, e = item
                rows.append((seq, e.wall, e.mono, e.kind, e.mad, e.conversation, e.correlation_id,
                             code.get(e.mad or ""), _json(e.payload)))
                if e.kind == "message":
                    message = e.payload.get("message", {})
                    fts.append((seq, message.get("content", ""), message.get("sender"), e.conversation))
            else:
                other.append(item)
        conn = self._conn
        try:
            conn.execute("BEGIN")
            for item in other:
                if item[0] == "meta":
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (item[1], _json(item[2])))
                elif item[0] == "module":
                    _, sha, name, path, mads, source = item
                    conn.execute(
                        "INSERT OR IGNORE INTO modules(sha256, name, path, mads, source, first_seq) "
                        "VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM events))",
                        (sha, name, path, _json(mads), source))
            if rows:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if fts:
                conn.executemany("INSERT INTO messages_fts(rowid, content, sender, conversation) VALUES (?, ?, ?, ?)", fts)
            conn.execute("COMMIT")
            self.batches += 1
            if rows:
                self.committed_seq = rows[-1][0]
        except Exception as exc:  # the journal must never take the ecosystem down
            self.error = f"{type(exc).__name__}: {exc}"
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        for item in other:
            if item[0] == "flush":
                item[1].set()
