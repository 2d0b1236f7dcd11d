"""The journal's SQLite file: its schema (numbered migrations) and how it is opened."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("journal")


@migrations()
def m001_events(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            wall REAL NOT NULL,
            mono REAL NOT NULL,
            kind TEXT NOT NULL,
            mad TEXT,
            conversation TEXT,
            correlation_id TEXT,
            code TEXT,
            payload TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX events_kind ON events(kind, seq)")
    db.execute("CREATE INDEX events_mad ON events(mad, seq)")
    db.execute("CREATE INDEX events_wall ON events(wall)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("""
        CREATE TABLE modules (
            sha256 TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            mads TEXT NOT NULL,
            source TEXT NOT NULL,
            first_seq INTEGER
        )""")
    db.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(content, sender UNINDEXED, conversation UNINDEXED)")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to a journal; the writer's runs in WAL mode with normal sync (durable against kill -9)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def open_for_writing(path: Path) -> sqlite3.Connection:
    """Create or reopen a journal for appending, its schema brought up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrations.apply(sqlite_utils.Database(conn))
    return conn


@migrations()
def m002_snapshots(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE snapshots (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            size INTEGER NOT NULL,
            data BLOB NOT NULL
        )""")


@migrations()
def m003_fts_external(db: sqlite_utils.Database) -> None:
    """The full-text index reads message text from the events and is kept by trigger.

    The index no longer keeps its own copy of every message (journals are smaller and the writer
    does less per message), and the writer commits a batch in one statement. json_valid keeps an
    event whose payload is not JSON out of the index instead of failing its batch.
    """
    db.execute("DROP TABLE messages_fts")
    db.execute("""
        CREATE VIEW message_texts AS
        SELECT seq, coalesce(json_extract(payload, '$.message.content'), '') AS content,
               json_extract(payload, '$.message.sender') AS sender, conversation
        FROM events WHERE kind = 'message' AND json_valid(payload)""")
    db.execute("""
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, sender UNINDEXED, conversation UNINDEXED, content='message_texts', content_rowid='seq')""")
    db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    db.execute("""
        CREATE TRIGGER events_fts AFTER INSERT ON events
        WHEN NEW.kind = 'message' AND json_valid(NEW.payload)
        BEGIN
            INSERT INTO messages_fts(rowid, content)
            VALUES (NEW.seq, coalesce(json_extract(NEW.payload, '$.message.content'), ''));
        END""")


@migrations()
def m004_node(db: sqlite_utils.Database) -> None:
    """The process an event happened in, for a journal of a distributed ecosystem (NULL otherwise)."""
    db.execute("ALTER TABLE events ADD COLUMN node TEXT")
