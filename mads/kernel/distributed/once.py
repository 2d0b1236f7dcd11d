"""Handled once: the answer to each inbox entry, kept in the MAD's own state in the same transaction as its effects.

A process can die after its handler committed and before the entry's ack reached Redis; the
entry is then delivered again. Its id is found here, and the answer recorded with it is sent
instead of handling it twice.

Entries read together are handled in one transaction (`Group`, a group commit): each handler
under a savepoint of its own (a failing one rolls back only its own effects), the ids and
answers of those that succeeded written just before the one COMMIT, and only then answered and
acknowledged. The state database runs in WAL mode with synchronous=NORMAL (`context.open_state`):
a commit survives the process dying (what kill -9 does); a power cut may lose the last commits,
and then their entries, never acknowledged either, are delivered again.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

TABLE = "_mad_handled"
SAVEPOINT = "mad_handler"
_INSERT = f"INSERT OR REPLACE INTO {TABLE} (id, answer, at) VALUES (?, ?, ?)"


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
    db.execute(_INSERT, [entry_id, json.dumps(answer, default=str), time.time()])


class Group:
    """One transaction of a MAD's state around the handlers of several entries, committed once (group commit).

    `begin` takes the write lock (BEGIN IMMEDIATE); each handler runs between `enter` and `keep` (or
    `drop` when it fails, which rolls back its savepoint alone); `commit` writes the records of the
    kept ones and commits, and hands each its outcome: nothing is answered or acknowledged before.
    """

    __slots__ = ("before", "conn", "db", "kept", "outcomes", "records", "started")

    def __init__(self, db: Any) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.records: list[tuple[str, str, float]] = []
        self.kept: dict[str, dict[str, Any]] = {}
        """The answers recorded at the commit, by id."""
        self.outcomes: list[tuple[Any, Any, Any, BaseException | None]] = []
        """(item, receipt, result, error) of each handled entry, in the order handled."""
        self.before = 0
        self.started = 0.0

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.started = time.perf_counter()

    def __len__(self) -> int:
        return len(self.outcomes)

    def enter(self) -> None:
        """Before a handler: its own savepoint."""
        conn = self.conn
        conn.execute(f"SAVEPOINT {SAVEPOINT}")
        self.before = conn.total_changes

    def keep(self, item: Any, receipt: Any, result: Any) -> None:
        """The handler returned: keep its effects, and its answer to record at the commit."""
        conn = self.conn
        changed = conn.total_changes != self.before
        conn.execute(f"RELEASE {SAVEPOINT}")
        receipt.closed = True  # replies published from now on go out at once, as after a commit
        if receipt.needs_record(changed):
            answer = receipt.answer(result)
            self.kept[receipt.once] = answer
            self.records.append((receipt.once, json.dumps(answer, default=str), time.time()))
        self.outcomes.append((item, receipt, result, None))

    def answered_before(self, item: Any, receipt: Any) -> bool:
        """A redelivered entry whose answer is recorded (committed, or kept by this group): it is answered with
        that answer at the commit instead of being handled again.

        Looked up when its turn comes, under the write lock: a copy claimed while the first was still
        queued or in this group is caught too.
        """
        if not receipt.redelivered or receipt.once is None:
            return False
        answer = self.kept.get(receipt.once)
        if answer is None:
            answer = recorded(self.db, receipt.once)
        if answer is None:
            return False
        from ..message import Message

        receipt.replies = [Message.from_dict(m) for m in answer.get("replies", [])]
        receipt.closed = True
        self.outcomes.append((item, receipt, answer.get("result"), None))
        return True

    def reopen(self) -> list[tuple[Any, Any, Any, BaseException | None]] | None:
        """The running handler is about to wait on another MAD: when it has changed nothing yet, commit the
        entries handled before it and go on in a new transaction, so their answers do not wait on it (that
        MAD may be waiting for one of them). Their outcomes, to hand out; None when there is nothing to commit
        or the handler already changed state (its effects cannot be split off: the group waits with it).

        A commit that fails raises with everything rolled back (see `commit`); the group is open again."""
        conn = self.conn
        if not self.outcomes or not conn.in_transaction or conn.total_changes != self.before:
            return None
        conn.execute(f"ROLLBACK TO {SAVEPOINT}")
        conn.execute(f"RELEASE {SAVEPOINT}")
        try:
            return self.commit()
        finally:
            self.begin()
            self.enter()

    def drop(self) -> None:
        """The handler failed: roll back its effects alone."""
        conn = self.conn
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.OperationalError):  # a handler that ended the transaction itself
                conn.execute(f"ROLLBACK TO {SAVEPOINT}")
                conn.execute(f"RELEASE {SAVEPOINT}")

    def fail(self, item: Any, receipt: Any, error: BaseException) -> None:
        """A handler that failed (rolled back) without ending the group: answered with its error at the commit."""
        receipt.closed = True
        self.outcomes.append((item, receipt, None, error))

    def commit(self) -> list[tuple[Any, Any, Any, BaseException | None]]:
        """Record the kept answers and COMMIT; the outcomes to hand out (only now: their effects are durable).

        A commit that fails rolls everything back and raises: nothing of the group is answered."""
        conn = self.conn
        try:
            if self.records:
                try:
                    conn.executemany(_INSERT, self.records)
                except sqlite3.OperationalError:  # the table is not there yet
                    _ensure(self.db)
                    conn.executemany(_INSERT, self.records)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        outcomes, self.outcomes, self.records, self.kept = self.outcomes, [], [], {}
        return outcomes

    def abandon(self) -> list[tuple[Any, Any, Any, BaseException | None]]:
        """The outcomes whose commit failed (already rolled back), forgotten here: to be answered with the error."""
        outcomes, self.outcomes, self.records, self.kept = self.outcomes, [], [], {}
        return outcomes

    def rollback(self) -> list[tuple[Any, Any, Any, BaseException | None]]:
        """Roll back the whole group; the outcomes that were waiting for the commit."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        outcomes, self.outcomes, self.records, self.kept = self.outcomes, [], [], {}
        return outcomes
