"""Reading journals back: list, resolve an ID, filter events, search, export, prune."""
from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .store import connect

ERROR_WHERE = ("kind IN ('crash', 'reload_failed', 'blocked') OR (kind = 'tool_result' AND "
               "json_extract(payload, '$.ok') = 0) OR (kind = 'state' AND json_extract(payload, '$.state') = 'failed')")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in '30s', '5m', '2h', '30d', '1w' (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"not a duration: {text!r} (use 30s, 5m, 2h, 30d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from an ISO-8601 time, epoch seconds, or a duration meaning that long ago."""
    try:
        return float(text)
    except ValueError:
        pass
    if _DURATION.match(text):
        return (now or time.time()) - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {text!r} (ISO-8601, epoch seconds, or 5m for five minutes ago)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass
class SessionSummary:
    """One recording at a glance."""

    id: str
    path: str
    started: float | None
    duration_s: float
    events: int
    mads: list[str]
    errors: int
    size: int
    command: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _open(path: Path) -> sqlite3.Connection:
    try:
        conn = connect(path, readonly=True)
        conn.execute("SELECT 1 FROM events LIMIT 1")
        return conn
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a mad journal ({exc})") from None


def read_meta(path: Path) -> dict[str, Any]:
    with closing(_open(path)) as conn:
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def active_mads(path: Path) -> list[str]:
    """The MADs a recording shows at work: sending or receiving messages, calling or called, asking the LLM."""
    with closing(_open(path)) as conn:
        rows = conn.execute(
            "SELECT mad FROM events WHERE kind IN ('message', 'tool_call', 'tool_result', 'llm_call', 'crash') "
            "UNION SELECT json_extract(payload, '$.caller') FROM events WHERE kind = 'tool_call' "
            "UNION SELECT r.value FROM events, json_each(json_extract(events.payload, '$.recipients')) AS r "
            "WHERE events.kind = 'message'").fetchall()
    return sorted({row[0] for row in rows if row[0] and row[0] not in ("kernel", "human")})


def set_golden(path: Path, golden: bool) -> None:
    """Mark a recording golden (kept in its own meta, so the mark travels with the file)."""
    _open(path).close()  # a clear error for a file that is not a journal
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('golden', ?)", [json.dumps(golden)])


def session_files(sessions: Path) -> list[Path]:
    if not sessions.is_dir():
        return []
    return sorted(p for p in sessions.glob("*.db") if p.is_file())


def summarize(path: Path) -> SessionSummary:
    conn = _open(path)
    try:
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        count, first, last = conn.execute("SELECT count(*), min(wall), max(wall) FROM events").fetchone()
        mads = [r[0] for r in conn.execute(
            "SELECT DISTINCT mad FROM events WHERE mad IS NOT NULL AND mad NOT IN ('kernel', 'human') ORDER BY mad")]
        errors = conn.execute(f"SELECT count(*) FROM events WHERE {ERROR_WHERE}").fetchone()[0]
    finally:
        conn.close()
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    return SessionSummary(
        id=meta.get("session_id", path.stem), path=str(path), started=meta.get("started", first),
        duration_s=round((last or 0) - (first or 0), 3), events=count, mads=mads, errors=errors,
        size=size, command=meta.get("command", ""))


LAST = "last"
"""The session reference that means the newest recording in the folder."""


def resolve(ref: str, sessions: Path) -> Path:
    """A session by file path, by a unique prefix of its id, or `last` (the newest); UsageError (exit 2) otherwise."""
    as_path = Path(ref)
    if as_path.suffix == ".db" and as_path.is_file():
        return as_path
    if ref == LAST:  # ids start with their UTC start time, so the newest sorts last
        files = session_files(sessions)
        if not files:
            raise UsageError(f"no recordings in {sessions} yet")
        return files[-1]
    matches = [p for p in session_files(sessions) if p.stem.startswith(ref)]
    if not matches:
        raise UsageError(f"no session {ref!r} in {sessions} (mad sessions list shows them)")
    if len(matches) > 1:
        names = ", ".join(p.stem for p in matches[:4])
        raise UsageError(f"session {ref!r} is ambiguous: {names}{' ...' if len(matches) > 4 else ''}")
    return matches[0]


def row_to_event(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    seq, wall, mono, kind, mad, conversation, correlation_id, code, payload, *later = row
    event = {"seq": seq, "wall": wall, "mono": mono, "kind": kind, "mad": mad, "conversation": conversation,
             "correlation_id": correlation_id, "code": code, "payload": json.loads(payload)}
    if later and later[0] is not None:  # the process it happened in, in a distributed ecosystem
        event["node"] = later[0]
    return event


def read_events(path: Path, *, kind: list[str] | None = None, mad: list[str] | None = None,
                since: float | None = None, after_seq: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Events in seq order, filtered by kind, MAD, wall time and seq."""
    where = ["seq > ?"]
    params: list[Any] = [after_seq]
    if kind:
        where.append(f"kind IN ({','.join('?' * len(kind))})")
        params += kind
    if mad:
        where.append(f"mad IN ({','.join('?' * len(mad))})")
        params += mad
    if since is not None:
        where.append("wall >= ?")
        params.append(since)
    sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    conn = _open(path)
    try:
        for row in conn.execute(sql, params):
            yield row_to_event(row)
    finally:
        conn.close()


def read_modules(path: Path) -> list[dict[str, Any]]:
    with closing(_open(path)) as conn:
        return [{"sha256": r[0], "name": r[1], "path": r[2], "mads": json.loads(r[3]), "source": r[4],
                 "first_seq": r[5]} for r in conn.execute("SELECT * FROM modules ORDER BY first_seq, name")]


def _fts_query(text: str) -> str:
    words = re.findall(r"\w+", text)
    return " ".join(f'"{w}"' for w in words)


def search(sessions: Path, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Messages of every session matching the text, best first within each session, newest session first."""
    query = _fts_query(text)
    if not query:
        raise UsageError("search needs at least one word")
    hits: list[dict[str, Any]] = []
    for path in reversed(session_files(sessions)):
        try:
            conn = _open(path)
        except UsageError:
            continue
        try:
            rows = conn.execute(
                "SELECT f.rowid, snippet(messages_fts, 0, '[', ']', '…', 12), f.sender, f.conversation, e.wall, "
                "bm25(messages_fts) FROM messages_fts f JOIN events e ON e.seq = f.rowid "
                "WHERE messages_fts MATCH ? ORDER BY bm25(messages_fts) LIMIT ?", (query, limit)).fetchall()
        finally:
            conn.close()
        for seq, snippet, sender, conversation, wall, rank in rows:
            hits.append({"session": path.stem, "seq": seq, "sender": sender, "conversation": conversation,
                         "wall": wall, "snippet": snippet, "rank": rank})
        if len(hits) >= limit:
            break
    return hits[:limit]


def export(path: Path) -> dict[str, Any]:
    """The whole session as one JSON-able object: meta, modules, events."""
    return {"meta": read_meta(path), "modules": read_modules(path), "events": list(read_events(path))}


def prune(sessions: Path, older_than: float, now: float | None = None, *, dry_run: bool = False) -> list[Path]:
    """Delete recordings that ended more than `older_than` seconds ago (dry run: only name them)."""
    cutoff = (now or time.time()) - older_than
    removed = []
    for path in session_files(sessions):
        try:
            summary = summarize(path)
        except UsageError:
            continue
        ended = (summary.started or 0) + summary.duration_s
        if ended < cutoff:
            if not dry_run:
                for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                              path.with_name(path.stem + ".stderr.log")):  # the TUI child's stderr
                    extra.unlink(missing_ok=True)
            removed.append(path)
    return removed
