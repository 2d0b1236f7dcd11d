"""The state at the start of a session: every MAD's SQLite state and the files folder, kept in the journal.

A re-run restores it into a temporary MAD_HOME so it starts from the same state. The
master key is never kept: secrets stay sealed, and a re-run uses the key of its own
environment.
"""
from __future__ import annotations

import io
import sqlite3
import tarfile
from pathlib import Path

from .store import connect

MAX_FILES_BYTES = 64 * 1024 * 1024


def _sqlite_bytes(path: Path) -> bytes:
    """A consistent copy of a live SQLite database, through the backup API."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(":memory:")
    try:
        source.backup(target)
        image = bytearray(target.serialize())
        if len(image) > 19 and image[18] == 2:  # a WAL database's image: mark it rollback-journal to reopen it
            image[18] = image[19] = 1
        return bytes(image)
    finally:
        source.close()
        target.close()


def _files_tar(folder: Path) -> bytes | None:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    if total > MAX_FILES_BYTES:
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def take(home: Path) -> list[tuple[str, str, bytes]]:
    """(name, kind, data) for each MAD state database and the files folder under MAD_HOME."""
    found: list[tuple[str, str, bytes]] = []
    state = home / "state"
    if state.is_dir():  # state/<mad>/<mad>.db, and state/<mad>.db as older homes keep it
        for db in sorted([*state.glob("*/*.db"), *state.glob("*.db")]):
            found.append((db.relative_to(home).as_posix(), "sqlite", _sqlite_bytes(db)))
    files = home / "files"
    if files.is_dir():
        data = _files_tar(files)
        if data is not None:
            found.append(("files", "tar", data))
    return found


def store(journal: Path, snapshots: list[tuple[str, str, bytes]]) -> None:
    conn = connect(journal)
    try:
        with conn:
            conn.executemany("INSERT OR REPLACE INTO snapshots(name, kind, size, data) VALUES (?, ?, ?, ?)",
                             [(name, kind, len(data), data) for name, kind, data in snapshots])
    finally:
        conn.close()


def restore(journal: Path, home: Path) -> list[str]:
    """Write the session's starting state into `home` (which should be empty); returns what was restored."""
    conn = connect(journal, readonly=True)
    try:
        rows = conn.execute("SELECT name, kind, data FROM snapshots ORDER BY name").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        conn.close()
    restored = []
    for name, kind, data in rows:
        if kind == "sqlite":
            target = home / name
            target.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(":memory:")
            db.deserialize(data)
            out = sqlite3.connect(target)
            try:
                db.backup(out)
            finally:
                out.close()
                db.close()
        elif kind == "tar":
            folder = home / name
            folder.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(folder, filter="data")
        restored.append(name)
    return restored
