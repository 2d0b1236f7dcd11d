"""The single journal writer: events queue up from any thread and are committed in batches.

A batch is committed when it holds 1,000 events or its first event is 50 ms old, so a
`kill -9` loses at most the last batch; WAL keeps the file sound whatever happens.

The emitting thread only appends a tuple of plain values (the payload already JSON). The
writer thread commits a batch of events as ONE multi-row INSERT in autocommit mode (the
full-text index follows by trigger), so SQLite does the whole batch in one call without
the GIL. Why one: each statement gives the GIL up, and getting it back from a busy event
loop can take a switch interval (5 ms); with a statement per table and per transaction
step the writer would spend its time waiting and fall behind.
"""
from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..events import Record, to_json
from .store import open_for_writing

BATCH_EVENTS = 1000
"""The most events one commit holds."""
BATCH_SECONDS = 0.05
"""The longest an event waits for its commit."""
PROMPT_KINDS = frozenset({"llm_call", "llm_chunk"})
"""Kinds committed at once: a reply streaming into the workbench's pane must not wait for a batch."""
_STOP = object()

_COLUMNS = ("wall", "mono", "kind", "mad", "conversation", "correlation_id", "code", "payload", "node")


@lru_cache(maxsize=32)
def _insert(rows: int) -> str:
    """INSERT INTO events(...) VALUES (?, ...), ... for this many rows (SQLite numbers them: seq is the rowid)."""
    one = "(" + ",".join("?" * len(_COLUMNS)) + ")"
    return f"INSERT INTO events({', '.join(_COLUMNS)}) VALUES " + ",".join([one] * rows)


class JournalWriter:
    """An event sink that appends every event to one SQLite journal, from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = open_for_writing(self.path)
        self._chunk = max(1, min(BATCH_EVENTS, self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                                 // len(_COLUMNS)))
        """Rows per INSERT statement: as many as SQLite takes parameters for."""
        self._events: deque[tuple[Any, ...]] = deque()
        self._control: deque[Any] = deque()
        """meta, module, flush and stop requests, taken before the events queued with them."""
        self._wake = threading.Event()
        self._written = 0
        self._flushes: list[tuple[int, threading.Event]] = []
        self.code: dict[str, str] = {}
        """Each MAD's current module hash, stamped on its events."""
        self.node: str | None = None
        """This process's node id, stamped on its own events in a distributed ecosystem."""
        self.committed_seq = self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self.batches = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mad-journal", daemon=True)
        self._thread.start()

    # from any thread -------------------------------------------------------
    def handle(self, event: Record) -> None:
        text = event.payload_json
        if text is None:  # serialised now, so later changes to the payload's objects are not recorded
            text = to_json(event.payload)
        events = self._events
        events.append((event.wall, event.mono, event.kind, event.mad, event.conversation, event.correlation_id,
                       event.code or self.code.get(event.mad or ""), text, event.node or self.node))
        if (len(events) >= BATCH_EVENTS or event.kind in PROMPT_KINDS) and not self._wake.is_set():
            self._wake.set()

    def set_meta(self, key: str, value: Any) -> None:
        self._control.append(("meta", key, to_json(value)))

    def add_module(self, sha256: str, name: str, path: str, mads: list[str], source: str) -> None:
        """Keep a module's source once; its MADs' events from now on name this hash."""
        for mad in mads:
            self.code[mad] = sha256
        self._control.append(("module", sha256, name, path, to_json(mads), source))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is committed."""
        done = threading.Event()
        self._control.append(("flush", done))
        self._wake.set()
        done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued and leave the journal as one self-contained file.

        A finished journal goes back from WAL to a rollback journal, so reading it later
        (read-only) leaves no -wal or -shm beside it; while someone still has it open it stays
        in WAL, which is just as sound.
        """
        if self._thread.is_alive():
            self._control.append(_STOP)
            self._wake.set()
            self._thread.join(timeout=10)
        if self._thread.is_alive():  # stuck past the join: leave its connection to it
            return
        try:
            self._conn.execute("PRAGMA busy_timeout=0")
            self._conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error:  # someone still reads it: it stays in WAL, as sound
            pass
        self._conn.close()

    # the writer thread -----------------------------------------------------
    def _run(self) -> None:
        events = self._events
        control = self._control
        wake = self._wake
        stop = False
        while not stop:
            # a batch is due when 1,000 events wait, the oldest waited BATCH_SECONDS, or on a request
            timeout = BATCH_SECONDS
            if events:  # (an event's mono is its own clock; a made-up one must not stretch the wait)
                timeout = min(BATCH_SECONDS, BATCH_SECONDS - (time.monotonic() - events[0][1]))
            if timeout > 0:
                wake.wait(timeout)
            wake.clear()
            while True:
                requests = [control.popleft() for _ in range(len(control))]
                # every event queued before a request is among the first len(events) now queued
                for request in requests:
                    if request is _STOP:
                        stop = True
                    elif request[0] == "flush":
                        self._flushes.append((self._written + len(events), request[1]))
                rows = [events.popleft() for _ in range(min(len(events), BATCH_EVENTS))]
                if rows or requests:
                    self._write(rows, [r for r in requests if r is not _STOP and r[0] != "flush"])
                    self._written += len(rows)
                if self._flushes:
                    self._release_flushes()
                # few big batches: each time this thread takes the GIL back it may stall the event loop
                if not (control or self._flushes or (stop and events) or len(events) >= BATCH_EVENTS):
                    break
        for _, done in self._flushes:
            done.set()

    def _release_flushes(self) -> None:
        """Wake each flush whose events are all written."""
        waiting = []
        for target, done in self._flushes:
            if target <= self._written:
                done.set()
            else:
                waiting.append((target, done))
        self._flushes = waiting

    def _write(self, rows: list[tuple[Any, ...]], requests: list[tuple[Any, ...]]) -> None:
        conn = self._conn
        try:
            if not requests and len(rows) <= self._chunk:
                if rows:  # the common case: one statement, its own transaction
                    self.committed_seq = conn.execute(
                        _insert(len(rows)), list(itertools.chain.from_iterable(rows))).lastrowid or 0
            else:
                conn.execute("BEGIN")
                for item in requests:
                    if item[0] == "meta":
                        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (item[1], item[2]))
                    elif item[0] == "module":
                        _, sha, name, path, mads, source = item
                        conn.execute(
                            "INSERT OR IGNORE INTO modules(sha256, name, path, mads, source, first_seq) "
                            "VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM events))",
                            (sha, name, path, mads, source))
                last = None
                for start in range(0, len(rows), self._chunk):
                    chunk = rows[start:start + self._chunk]
                    last = conn.execute(_insert(len(chunk)), list(itertools.chain.from_iterable(chunk))).lastrowid
                conn.execute("COMMIT")
                if last:
                    self.committed_seq = last
            self.batches += 1
        except Exception as exc:  # the journal must never take the ecosystem down
            self.error = f"{type(exc).__name__}: {exc}"
            if conn.in_transaction:
                conn.execute("ROLLBACK")
