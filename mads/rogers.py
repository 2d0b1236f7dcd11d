"""Rogers, the conversation keeper: every conversation and every message, kept across restarts."""
from __future__ import annotations

import json
import re
from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, Message, ToolError, UsageError, tool

migrations = Migrations("rogers")

_HANDLE = re.compile(r"^[A-Za-z][\w-]*$")
_MAX_LIMIT = 1000


@migrations()
def m001_create_tables(db: Any) -> None:
    db.execute("""CREATE TABLE conversations (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, participants TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]', created REAL NOT NULL)""")
    db.execute("""CREATE TABLE messages (
        id TEXT PRIMARY KEY, conversation TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,
        content TEXT NOT NULL, mentions TEXT NOT NULL DEFAULT '[]', tags TEXT NOT NULL DEFAULT '[]',
        kind TEXT NOT NULL, reply_to TEXT, correlation_id TEXT, created REAL NOT NULL)""")
    db.execute("CREATE UNIQUE INDEX messages_by_seq ON messages (conversation, seq)")
    db.execute("CREATE INDEX messages_by_sender ON messages (sender)")


def _handle(value: str, what: str) -> str:
    """A participant handle, lowercased; ToolError when it is not one."""
    name = (value or "").strip().lstrip("@")
    if not _HANDLE.match(name):
        raise ToolError(f"{what} must be a handle like alice or horace, got {value!r}")
    return name.lower()


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise ToolError(f"offset must be 0 or more, got {offset}")
    if not 1 <= limit <= _MAX_LIMIT:
        raise ToolError(f"limit must be between 1 and {_MAX_LIMIT}, got {limit}")


class Rogers(MAD):
    """Keeps conversations: creates, lists, joins and leaves them, stores every message, reports liveness."""

    migrations = migrations
    observes_all = True

    async def on_start(self) -> None:
        known = {conv["id"] for conv in await self.ctx.list_conversations()}
        counts = {r["conversation"]: r["n"] for r in self.ctx.state.query(
            "SELECT conversation, COUNT(*) AS n FROM messages GROUP BY conversation")}
        for row in list(self.ctx.state.query("SELECT * FROM conversations ORDER BY created")):
            if row["id"] in known:
                continue
            await self.ctx.create_conversation(row["name"], json.loads(row["participants"]), json.loads(row["tags"]),
                                               conversation_id=row["id"], created=row["created"],
                                               messages=counts.get(row["id"], 0))

    async def on_observe(self, message: Message, conversation: dict[str, Any]) -> None:
        self._store(message, conversation)

    async def on_message(self, message: Message, addressed: bool) -> None:
        if addressed and message.reply_to is None:
            reply = await self.ctx.think(message)
            await self.ctx.publish(reply)
            self._store(reply, await self._bus_conversation(reply.conversation))

    # storage -----------------------------------------------------------------
    def _upsert_conversation(self, conv: dict[str, Any]) -> None:
        self.ctx.state.execute(
            """INSERT INTO conversations (id, name, participants, tags, created) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET name = excluded.name, participants = excluded.participants,
               tags = excluded.tags""",
            [conv["id"], conv["name"], json.dumps(list(conv.get("participants") or [])),
             json.dumps(list(conv.get("tags") or [])), conv["created"]])

    def _store(self, message: Message, conversation: dict[str, Any]) -> None:
        """Record the conversation as it is and the message, once."""
        db = self.ctx.state
        with db.atomic():
            self._upsert_conversation(conversation)
            db.execute(
                """INSERT OR IGNORE INTO messages (id, conversation, seq, sender, content, mentions, tags, kind,
                   reply_to, correlation_id, created)
                   SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?
                   FROM messages WHERE conversation = ?""",
                [message.id, message.conversation, message.sender, message.content, json.dumps(message.mentions),
                 json.dumps(message.tags), message.kind, message.reply_to, message.correlation_id,
                 message.created, message.conversation])

    async def _sync_bus(self) -> None:
        """Record the conversations the bus has now (some are made without Rogers, like `main`)."""
        conversations = await self.ctx.list_conversations()
        with self.ctx.state.atomic():
            for conv in conversations:
                self._upsert_conversation(conv)

    async def _bus_conversation(self, conversation_id: str) -> dict[str, Any]:
        """The bus's conversation; one known only to the database is put back on the bus."""
        try:
            return await self.ctx.get_conversation(conversation_id)
        except UsageError:
            pass
        rows = list(self.ctx.state.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
        if not rows:
            raise ToolError(f"unknown conversation {conversation_id!r}")
        row = rows[0]
        return await self.ctx.create_conversation(row["name"], json.loads(row["participants"]),
                                                  json.loads(row["tags"]), conversation_id=row["id"],
                                                  created=row["created"])

    async def _row(self, conversation_id: str) -> dict[str, Any]:
        conv = await self._bus_conversation(conversation_id)
        self._upsert_conversation(conv)
        return next(iter(self._select("WHERE c.id = ?", [conversation_id], 1)))

    def _select(self, where: str, params: list[Any], limit: int) -> list[dict[str, Any]]:
        rows = self.ctx.state.query(
            f"""SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation = c.id) AS messages
                FROM conversations c {where} ORDER BY c.created DESC, c.id DESC LIMIT ?""", [*params, limit])
        return [{"id": r["id"], "name": r["name"], "participants": json.loads(r["participants"]),
                 "tags": json.loads(r["tags"]), "created": r["created"], "messages": r["messages"]} for r in rows]

    # tools -------------------------------------------------------------------
    @tool
    async def create_conversation(self, name: str, participants: list[str] | None = None,
                                  tags: list[str] | None = None) -> dict[str, Any]:
        """Create a conversation on the bus and keep it; returns the conversation."""
        if not name or not name.strip():
            raise ToolError("a conversation needs a name")
        members = [_handle(p, "participant") for p in participants or []]
        labels = [t.strip().lstrip("#").lower() for t in tags or [] if t.strip().lstrip("#")]
        conv = await self.ctx.create_conversation(name.strip(), members, labels)
        self._upsert_conversation(conv)
        self.ctx.emit("conversation_created", conversation=conv["id"], name=conv["name"])
        return conv

    @tool
    async def list_conversations(self, participant: str | None = None, tag: str | None = None,
                                 limit: int = 50) -> list[dict[str, Any]]:
        """List conversations, newest first, optionally only those of a participant or with a tag."""
        _check_page(0, limit)
        await self._sync_bus()
        clauses: list[str] = []
        params: list[Any] = []
        if participant:
            clauses.append("EXISTS (SELECT 1 FROM json_each(c.participants) WHERE value = ?)")
            params.append(_handle(participant, "participant"))
        if tag:
            clauses.append("EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value = ?)")
            params.append(tag.strip().lstrip("#").lower())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, params, limit)

    @tool
    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """One conversation: name, participants, tags, creation time and message count."""
        return await self._row(conversation_id)

    @tool
    async def send_message(self, conversation_id: str, content: str, sender: str = "human") -> dict[str, Any]:
        """Publish a message in a conversation (from `human` unless told); returns it and its recipients."""
        if not content or not content.strip():
            raise ToolError("the message is empty")
        who = _handle(sender, "sender")
        mads = {p["participant"] for p in await self.ctx.directory() if p["kind"] == "mad"}
        if who in mads and who != self.ctx.name:
            raise ToolError(f"cannot send as @{who}: a MAD speaks for itself")
        conv = await self._bus_conversation(conversation_id)
        message = Message.create(conv["id"], who, content)
        recipients = await self.ctx.publish(message)
        if who == self.ctx.name:  # the bus shows no observer its own messages
            self._store(message, conv)
        return {"message": message.to_dict(), "recipients": recipients}

    @tool
    async def get_messages(self, conversation_id: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """A conversation's messages in order, a page at a time."""
        _check_page(offset, limit)
        conv = await self._row(conversation_id)
        rows = self.ctx.state.query(
            "SELECT * FROM messages WHERE conversation = ? ORDER BY seq LIMIT ? OFFSET ?",
            [conversation_id, limit, offset])
        messages = [{**r, "mentions": json.loads(r["mentions"]), "tags": json.loads(r["tags"])} for r in rows]
        return {"conversation_id": conversation_id, "total": conv["messages"], "offset": offset,
                "messages": messages}

    @tool
    async def join_conversation(self, conversation_id: str, participant: str) -> dict[str, Any]:
        """Add a participant to a conversation; returns the conversation."""
        name = _handle(participant, "participant")
        await self._bus_conversation(conversation_id)
        await self.ctx.join(conversation_id, name)
        return await self._row(conversation_id)

    @tool
    async def leave_conversation(self, conversation_id: str, participant: str) -> dict[str, Any]:
        """Remove a participant from a conversation; returns the conversation."""
        name = _handle(participant, "participant")
        await self._bus_conversation(conversation_id)
        await self.ctx.leave(conversation_id, name)
        return await self._row(conversation_id)

    @tool
    async def get_connections(self) -> list[dict[str, Any]]:
        """Every participant with its liveness: HEALTHY, STALE or DISCONNECTED."""
        return await self.ctx.directory()

    @tool
    async def get_stats(self) -> dict[str, Any]:
        """Counts of conversations and messages (in all and per sender), and the bus's figures."""
        await self._sync_bus()
        db = self.ctx.state
        per_sender = {r["sender"]: r["n"] for r in db.query(
            "SELECT sender, COUNT(*) AS n FROM messages GROUP BY sender ORDER BY n DESC, sender")}
        return {
            "conversations": db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0],
            "messages": db.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
            "messages_per_sender": per_sender,
            "bus": await self.ctx.bus_statistics(),
        }
