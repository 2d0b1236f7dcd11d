"""Dewey, the librarian: ranked full-text search over every message, transcripts, import and export."""
from __future__ import annotations

import json
import math
import os
import posixpath
import re
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Migrations

from mads.kernel import MAD, Message, ToolError, UsageError, tool

migrations = Migrations("dewey")

EXPORT_FORMAT = "mad-conversation"
MAX_IMPORT_BYTES = 50 * 1024 * 1024


@migrations()
def m001_create_tables(db: Any) -> None:
    db.execute("""CREATE TABLE conversations (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, participants TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]', created REAL NOT NULL)""")
    db.execute("""CREATE TABLE messages (
        id TEXT PRIMARY KEY, conversation TEXT NOT NULL, sender TEXT NOT NULL, content TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]', created REAL NOT NULL)""")
    db.execute("CREATE INDEX messages_by_conversation ON messages (conversation, created)")
    # The index keeps its own copy of the text, linked by message id (rowids may change on VACUUM).
    db.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(content, id UNINDEXED, tokenize='porter unicode61')")
    db.execute("""CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (content, id) VALUES (new.content, new.id); END""")
    db.execute("""CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE id = old.id; END""")


def _when(value: str | float | None, name: str) -> float | None:
    """ISO-8601 (UTC unless it says otherwise) or epoch seconds, as epoch seconds."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = ToolError(f"{name}: expected an ISO-8601 time or epoch seconds, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise bad from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.timestamp()
    if isinstance(value, bool) or not math.isfinite(value):
        raise bad
    return float(value)


def _stamp(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _quoted(query: str) -> str:
    """The query's words, each quoted: a plain search that FTS5 syntax cannot break."""
    words = re.findall(r"\w+", query)
    if not words:
        raise ToolError(f"nothing to search for in {query!r}")
    return " ".join(f'"{w}"' for w in words)


class Dewey(MAD):
    """The librarian: ranked full-text search over every conversation, transcripts, import and export."""

    migrations = migrations
    home_folders = ("files",)
    observes_all = True

    async def on_observe(self, message: Message, conversation: dict[str, Any]) -> None:
        self._index(message, conversation)

    async def on_message(self, message: Message, addressed: bool) -> None:
        if addressed and message.reply_to is None:
            reply = await self.ctx.think(message)
            await self.ctx.publish(reply)  # the bus shows no observer its own messages: index it here
            self._index(reply, await self.ctx.get_conversation(reply.conversation))

    def _index(self, message: Message, conversation: dict[str, Any]) -> None:
        db = self.ctx.state
        with db.atomic():
            self._upsert_conversation(conversation)
            db.execute("INSERT OR IGNORE INTO messages (id, conversation, sender, content, tags, created) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [message.id, message.conversation, message.sender, message.content,
                        json.dumps(message.tags), message.created])

    def _upsert_conversation(self, conv: dict[str, Any]) -> None:
        self.ctx.state.execute(
            """INSERT INTO conversations (id, name, participants, tags, created) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET name = excluded.name, participants = excluded.participants,
               tags = excluded.tags""",
            [conv["id"], conv.get("name") or conv["id"], json.dumps(list(conv.get("participants") or [])),
             json.dumps(list(conv.get("tags") or [])), conv.get("created") or 0.0])

    async def _conversation(self, conversation_id: str) -> dict[str, Any]:
        """The conversation as indexed (or as the bus has it, if it has no message yet)."""
        rows = list(self.ctx.state.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
        if rows:
            row = rows[0]
            return {**row, "participants": json.loads(row["participants"]), "tags": json.loads(row["tags"])}
        try:
            conv = await self.ctx.get_conversation(conversation_id)
        except UsageError:
            raise ToolError(f"unknown conversation {conversation_id!r}") from None
        conv.pop("messages", None)
        return conv

    def _messages(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self.ctx.state.query(
            "SELECT * FROM messages WHERE conversation = ? ORDER BY created, rowid", [conversation_id])
        return [{**r, "tags": json.loads(r["tags"])} for r in rows]

    # paths -------------------------------------------------------------------
    def _file(self, path: str) -> tuple[str, Path]:
        """A relative path under MAD_HOME/files and its real location; nothing outside is reachable."""
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            raise ToolError("path is empty or invalid")
        if path.startswith(("/", "\\")) or os.path.isabs(path):
            raise ToolError(f"path must be relative to the files folder: {path}")
        key = posixpath.normpath(path.replace("\\", "/"))
        if key in (".", "..") or key.startswith("../") or ".." in path.replace("\\", "/").split("/"):
            raise ToolError(f"path escapes the files folder: {path}")
        root = os.path.realpath(self.ctx.home / "files")
        real = os.path.realpath(os.path.join(root, *key.split("/")))
        if not real.startswith(root + os.sep):
            raise ToolError(f"path escapes the files folder: {path}")
        return key, Path(real)

    # tools -------------------------------------------------------------------
    @tool
    def search(self, query: str, conversation_id: str | None = None, sender: str | None = None,
               since: str | float | None = None, until: str | float | None = None,
               limit: int = 10, offset: int = 0) -> dict[str, Any]:
        """Full-text search over every message, best matches first (bm25), with optional filters.

        `since` and `until` take ISO-8601 times (UTC unless a zone is given) or epoch seconds.
        Dewey's own answers are left out unless `sender` is dewey.
        """
        if not query or not query.strip():
            raise ToolError("the query is empty")
        if not 1 <= limit <= 100:
            raise ToolError(f"limit must be between 1 and 100, got {limit}")
        if offset < 0:
            raise ToolError(f"offset must be 0 or more, got {offset}")
        clauses: list[str] = ["messages_fts MATCH ?"]
        params: list[Any] = []
        if conversation_id:
            clauses.append("m.conversation = ?")
            params.append(conversation_id)
        if sender:
            clauses.append("m.sender = ?")
            params.append(sender.strip().lstrip("@").lower())
        else:  # earlier answers of Dewey would echo every search back
            clauses.append("m.sender != ?")
            params.append(self.ctx.name)
        start, end = _when(since, "since"), _when(until, "until")
        if start is not None:
            clauses.append("m.created >= ?")
            params.append(start)
        if end is not None:
            clauses.append("m.created <= ?")
            params.append(end)
        if start is not None and end is not None and start > end:
            raise ToolError("since is after until")
        body = f"FROM messages_fts JOIN messages m ON m.id = messages_fts.id WHERE {' AND '.join(clauses)}"
        db = self.ctx.state
        error = ""
        for match in (query, _quoted(query)):
            try:
                total = db.execute(f"SELECT COUNT(*) {body}", [match, *params]).fetchone()[0]
                rows = list(db.query(
                    f"""SELECT m.id, m.conversation, m.sender, m.created,
                        snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet, bm25(messages_fts) AS rank
                        {body} ORDER BY rank, m.created LIMIT ? OFFSET ?""", [match, *params, limit, offset]))
                break
            except sqlite3.OperationalError as exc:
                error = str(exc)
        else:
            raise ToolError(f"cannot search for {query!r}: {error}")
        return {"query": query, "total": total, "hits": rows}

    @tool
    async def get_transcript(self, conversation_id: str,
                       format: Literal["markdown", "json", "text"] = "markdown") -> str | dict[str, Any]:
        """A conversation's messages in order, as markdown, plain text or JSON."""
        conv = await self._conversation(conversation_id)
        messages = self._messages(conversation_id)
        if format == "json":
            return {"conversation": conv, "messages": messages}
        if format == "text":
            lines = [f"{conv['name']} ({conv['id']}), {len(messages)} messages"]
            for m in messages:
                content = m["content"].replace("\n", "\n    ")
                lines.append(f"[{_stamp(m['created'])}] {m['sender']}: {content}")
            return "\n".join(lines) + "\n"
        people = ", ".join(f"@{p}" for p in conv["participants"]) or "nobody"
        parts = [f"# {conv['name']}\n", f"Conversation `{conv['id']}` · {len(messages)} messages · {people}\n"]
        for m in messages:
            parts.append(f"### @{m['sender']} · {_stamp(m['created'])}\n\n{m['content']}\n")
        return "\n".join(parts)

    @tool
    async def export(self, conversation_id: str, path: str) -> dict[str, Any]:
        """Write a conversation to a .json or .md file under the files folder."""
        key, target = self._file(path)
        suffix = target.suffix.lower()
        if suffix not in (".json", ".md"):
            raise ToolError(f"export path must end in .json or .md: {path}")
        if target.is_dir():
            raise ToolError(f"path is a folder: {path}")
        conv = await self._conversation(conversation_id)
        messages = self._messages(conversation_id)
        if suffix == ".json":
            text = json.dumps({"format": EXPORT_FORMAT, "version": 1, "conversation": conv,
                               "messages": messages}, ensure_ascii=False, indent=2) + "\n"
        else:
            text = str(await self.get_transcript(conversation_id, "markdown"))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".dewey-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return {"path": key, "conversation_id": conversation_id, "format": suffix[1:],
                "messages": len(messages), "bytes": len(text.encode())}

    @tool(name="import")
    def import_(self, path: str) -> dict[str, Any]:
        """Read a conversation exported as .json back into the index; messages already there are skipped."""
        key, source = self._file(path)
        if source.suffix.lower() != ".json":
            raise ToolError(f"only .json exports can be imported: {path}")
        if not source.is_file():
            raise ToolError(f"no such file: {path}")
        if source.stat().st_size > MAX_IMPORT_BYTES:
            raise ToolError(f"file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB: {path}")
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ToolError(f"not a JSON file: {path} ({exc})") from None
        conv, messages = self._check_import(data, path)
        db = self.ctx.state
        imported = 0
        with db.atomic():
            db.execute("INSERT OR IGNORE INTO conversations (id, name, participants, tags, created) "
                       "VALUES (?, ?, ?, ?, ?)",
                       [conv["id"], conv["name"], json.dumps(conv["participants"]), json.dumps(conv["tags"]),
                        conv["created"]])
            for m in messages:
                imported += db.execute(
                    "INSERT OR IGNORE INTO messages (id, conversation, sender, content, tags, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [m["id"], conv["id"], m["sender"], m["content"], json.dumps(m["tags"]), m["created"]]).rowcount
        return {"path": key, "conversation_id": conv["id"], "messages": len(messages), "imported": imported,
                "skipped": len(messages) - imported}

    def _check_import(self, data: Any, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The conversation and messages of an export, checked; ToolError names the first problem."""
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise ToolError(f"not a conversation export (format {EXPORT_FORMAT!r} expected): {path}")
        conv, messages = data.get("conversation"), data.get("messages")
        if not isinstance(conv, dict) or not isinstance(conv.get("id"), str) or not conv["id"]:
            raise ToolError(f"the export has no conversation id: {path}")
        if not isinstance(messages, list):
            raise ToolError(f"the export has no message list: {path}")
        clean = {"id": conv["id"], "name": str(conv.get("name") or conv["id"]),
                 "participants": [str(p) for p in conv.get("participants") or []],
                 "tags": [str(t) for t in conv.get("tags") or []],
                 "created": float(conv["created"]) if isinstance(conv.get("created"), (int, float)) else 0.0}
        out = []
        for n, m in enumerate(messages, 1):
            if not (isinstance(m, dict) and all(isinstance(m.get(k), str) for k in ("id", "sender", "content"))
                    and isinstance(m.get("created"), (int, float)) and not isinstance(m.get("created"), bool)):
                raise ToolError(f"message {n} of the export lacks id, sender, content or created: {path}")
            if m.get("conversation", conv["id"]) != conv["id"]:
                raise ToolError(f"message {n} belongs to another conversation: {path}")
            given = m.get("tags")
            tags = given if isinstance(given, list) else []
            out.append({"id": m["id"], "sender": m["sender"], "content": m["content"],
                        "tags": [str(t) for t in tags], "created": float(m["created"])})
        return clean, out
