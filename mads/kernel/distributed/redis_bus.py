"""The bus over Redis: the conversation registry in hashes and lists, every publish one atomic script.

Delivering to this process's MADs is not the bus's job here: each hosted MAD reads its own
inbox stream (see `node.py`). The bus only writes to inboxes, through the publish script.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bus import Bus, Conversation, Mailbox
from ..errors import UsageError
from ..events import to_json
from ..message import Message, new_id
from . import scripts
from .keys import Keys

if TYPE_CHECKING:
    import redis.asyncio


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_SEPARATOR = scripts.SEPARATOR
_PARTS = scripts.PARTS


def _answer(value: Any) -> tuple[list[str], list[str]] | None:
    """A message's targets and recipients from the publish script's answer; None for an unknown conversation."""
    text = value if type(value) is str else _text(value)
    targets, parted, recipients = text.partition(_PARTS)
    if not parted:
        return None
    return (targets.split(_SEPARATOR) if targets else []), (recipients.split(_SEPARATOR) if recipients else [])


class RedisBus(Bus):
    """Conversations and publishing for every process of one ecosystem, kept in one Redis."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys,
                 on_publish: Callable[[Message, list[str]], None] | None = None) -> None:
        self.redis = client
        self.keys = keys
        self._on_publish = on_publish
        self._publish = client.register_script(scripts.PUBLISH)
        self._join = client.register_script(scripts.JOIN)
        self._queued: list[tuple[Message, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self.mailboxes: dict[str, Mailbox] = {}
        """The mailboxes of this process's MADs (their inboxes are read into them)."""
        self.published = 0
        self.delivered = 0

    def rebind(self, client: redis.asyncio.Redis) -> None:
        """Use another client (the previous one was closed)."""
        self.redis = client
        self._publish = client.register_script(scripts.PUBLISH)
        self._join = client.register_script(scripts.JOIN)

    # participants ---------------------------------------------------------------
    async def register(self, participant: str, mailbox: Mailbox | None, *, observer: bool = False) -> None:
        name = participant.lower()
        async with self.redis.pipeline(transaction=True) as pipe:
            if mailbox is None:
                pipe.sadd(self.keys.participants, name)
            else:
                self.mailboxes[name] = mailbox
                pipe.sadd(self.keys.mads, name)
                if observer:
                    pipe.sadd(self.keys.observers, name)
            await pipe.execute()

    async def unregister(self, participant: str) -> None:
        self.mailboxes.pop(participant.lower(), None)

    async def is_participant(self, name: str) -> bool:
        name = name.lower()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self.keys.mads, name)
            pipe.sismember(self.keys.participants, name)
            found = await pipe.execute()
        return any(found)

    # conversations ----------------------------------------------------------------
    async def create_conversation(
        self, name: str, participants: list[str] | None = None, tags: list[str] | None = None,
        *, conversation_id: str | None = None, created: float | None = None, messages: int = 0,
    ) -> Conversation:
        cid = conversation_id or new_id()
        members = list(dict.fromkeys(p.lower() for p in participants or []))
        conv = Conversation(cid, name, members, list(tags or []), created or time.time(), messages)
        key = self.keys.conversation(cid)
        fields: Any = {"name": name, "tags": json.dumps(conv.tags), "created": repr(conv.created), "messages": messages}
        if not await self.redis.hsetnx(key, "name", name):
            raise UsageError(f"conversation {cid!r} already exists")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            if members:
                pipe.rpush(self.keys.members(cid), *members)
            pipe.zadd(self.keys.conversations, {cid: conv.created})
            await pipe.execute()
        return conv

    async def get_conversation(self, conversation_id: str) -> Conversation:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.conversation(conversation_id))
            pipe.lrange(self.keys.members(conversation_id), 0, -1)
            fields, members = await pipe.execute()
        if not fields:
            raise UsageError(f"unknown conversation {conversation_id!r}")
        return self._conversation(conversation_id, fields, members)

    @staticmethod
    def _conversation(cid: str, fields: dict[Any, Any], members: list[Any]) -> Conversation:
        values = {_text(k): _text(v) for k, v in fields.items()}
        return Conversation(cid, values.get("name", cid), [_text(m) for m in members],
                            json.loads(values.get("tags") or "[]"), float(values.get("created") or 0),
                            int(values.get("messages") or 0))

    async def conversations(self) -> list[Conversation]:
        ids = [_text(cid) for cid in await self.redis.zrange(self.keys.conversations, 0, -1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(self.keys.conversation(cid))
                pipe.lrange(self.keys.members(cid), 0, -1)
            found = await pipe.execute()
        return [self._conversation(cid, found[2 * i], found[2 * i + 1]) for i, cid in enumerate(ids)
                if found[2 * i]]

    async def join(self, conversation_id: str, participant: str) -> Conversation:
        try:
            await self._join(keys=[self.keys.conversation(conversation_id), self.keys.members(conversation_id)],
                             args=[participant.lower()])
        except Exception as exc:
            if "unknown conversation" in str(exc):
                raise UsageError(f"unknown conversation {conversation_id!r}") from None
            raise
        return await self.get_conversation(conversation_id)

    async def leave(self, conversation_id: str, participant: str) -> Conversation:
        await self.get_conversation(conversation_id)
        await self.redis.lrem(self.keys.members(conversation_id), 0, participant.lower())
        return await self.get_conversation(conversation_id)

    # publishing ---------------------------------------------------------------------
    @staticmethod
    def _argument(message: Message) -> str:
        """One message as the publish script's one value (see `scripts.PUBLISH`)."""
        return _SEPARATOR.join((message.conversation, message.sender, to_json(message.mentions),
                                message.reply_to or "", to_json(message.to_dict())))

    async def publish(self, message: Message, pipe: Any = None) -> list[str]:
        """Publish in one atomic step; with `pipe`, the step is queued in that transaction instead.

        Publishes made in the same turn of the event loop travel together, in one call of the script.
        """
        if pipe is not None:
            await self._publish(args=[self.keys.prefix, self._argument(message)], client=pipe)
            self.published += 1
            return []
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((message, future))
        if len(self._queued) == 1:  # the first of this turn: the others published meanwhile go in the same trip
            asyncio.get_running_loop().call_soon(self._send_queued)
        answer = _answer(await future)
        if answer is None:
            raise UsageError(f"unknown conversation {message.conversation!r}")
        targets, recipients = answer
        self.published += 1
        self.delivered += len(recipients)
        if self._on_publish is not None:
            self._on_publish(message, targets)
        return recipients

    def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Message, asyncio.Future[Any]]]) -> None:
        """Publishes queued in one turn of the loop, in one call of the script (in their order, each atomic)."""
        args = [self.keys.prefix, *(self._argument(message) for message, _ in batch)]
        try:
            outcomes = await self._publish(args=args)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes):
            if not future.done():
                future.set_result(outcome)

    def published_in(self, message: Message, outcome: Any) -> None:
        """A publish that ran inside a transaction: count it and tell the hook, as `publish` does."""
        answer = _answer(outcome[0]) if isinstance(outcome, list) and outcome else None
        if answer is None:
            return
        targets, recipients = answer
        self.delivered += len(recipients)
        if self._on_publish is not None:
            self._on_publish(message, targets)

    def statistics(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "delivered": self.delivered,
            "mailboxes": {name: box.statistics() for name, box in self.mailboxes.items()},
        }
