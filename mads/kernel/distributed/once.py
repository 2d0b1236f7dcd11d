"""Handled once: the answer to each inbox entry, kept in the MAD's own state in the same transaction as its effects.

A process can die after its handler committed and before the entry's ack reached Redis; the
entry is then delivered again. Its id is found here, and the answer recorded with it is sent
instead of handling it twice.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

TABLE = "_mad_handled"


@contextlib.contextmanager
def transaction(db: Any) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT around a handler: its own transactions nest as savepoints.

    IMMEDIATE takes the write lock at once, so replicas sharing the state wait for each other
    (busy_timeout) instead of failing when a read turns into a write.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _ensure(db: Any) -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, answer TEXT NOT NULL, at REAL NOT NULL)")


def recorded(db: Any, entry_id: str) -> dict[str, Any] | None:
    """The answer recorded for this id, or None when it was never handled to the end."""
    _ensure(db)
    row = db.execute(f"SELECT answer FROM {TABLE} WHERE id = ?", [entry_id]).fetchone()
    return json.loads(row[0]) if row else None


def record(db: Any, entry_id: str, answer: dict[str, Any]) -> None:
    """Keep the answer (call within the handler's transaction)."""
    _ensure(db)
    db.execute(f"INSERT OR REPLACE INTO {TABLE} (id, answer, at) VALUES (?, ?, ?)",
               [entry_id, json.dumps(answer, default=str), time.time()])
