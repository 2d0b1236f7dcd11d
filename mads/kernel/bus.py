"""The conversation bus: the `Bus` interface, bounded mailboxes, and the in-memory implementation."""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .message import Message, new_id


class MailboxFull(Exception):
    """send_nowait() found the mailbox at its bound."""


@dataclass(slots=True)
class Delivery:
    """A message delivered to a participant; addressed when it mentions the participant."""

    message: Message
    addressed: bool


@dataclass(slots=True)
class Observation:
    """A message seen by an observer of every conversation, with the conversation as it was."""

    message: Message
    conversation: dict[str, Any]


class Mailbox:
    """A bounded FIFO with backpressure: `put()` waits when full, `put_nowait()` raises."""

    __slots__ = ("_queue", "maxsize", "delivered", "taken", "waits", "high_water")

    def __init__(self, maxsize: int = 1000) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.maxsize = maxsize
        self.delivered = 0
        self.taken = 0
        self.waits = 0
        self.high_water = 0

    async def put(self, item: Any) -> None:
        queue = self._queue
        if queue.full():
            self.waits += 1
            await queue.put(item)
        else:
            queue.put_nowait(item)
        self.delivered += 1
        depth = queue.qsize()
        if depth > self.high_water:
            self.high_water = depth

    def put_nowait(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            raise MailboxFull(f"mailbox full ({self.maxsize})") from None
        self.delivered += 1

    async def get(self) -> Any:
        item = await self._queue.get()
        self.taken += 1
        return item

    def get_nowait(self) -> Any:
        item = self._queue.get_nowait()
        self.taken += 1
        return item

    def empty(self) -> bool:
        return self._queue.empty()

    def __len__(self) -> int:
        return self._queue.qsize()

    def statistics(self) -> dict[str, int]:
        return {
            "depth": self._queue.qsize(),
            "maxsize": self.maxsize,
            "delivered": self.delivered,
            "taken": self.taken,
            "waits": self.waits,
            "high_water": self.high_water,
        }


@dataclass
class Conversation:
    """A conversation: its participants in join order and its messages' count."""

    id: str
    name: str
    participants: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    messages: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "participants": list(self.participants),
            "tags": list(self.tags),
            "created": self.created,
            "messages": self.messages,
        }


class Bus(ABC):
    """Conversations with participants; delivery by mention and by membership, in order."""

    @abstractmethod
    def register(self, participant: str, mailbox: Mailbox | None, *, observer: bool = False) -> None:
        """Add a participant; None for one that reads no mailbox (the human, an external client)."""

    @abstractmethod
    def unregister(self, participant: str) -> None: ...

    @abstractmethod
    def is_participant(self, name: str) -> bool: ...

    @abstractmethod
    def create_conversation(
        self, name: str, participants: list[str] | None = None, tags: list[str] | None = None,
        *, conversation_id: str | None = None, created: float | None = None,
    ) -> Conversation: ...

    @abstractmethod
    def get_conversation(self, conversation_id: str) -> Conversation: ...

    @abstractmethod
    def conversations(self) -> list[Conversation]: ...

    @abstractmethod
    def join(self, conversation_id: str, participant: str) -> Conversation: ...

    @abstractmethod
    def leave(self, conversation_id: str, participant: str) -> Conversation: ...

    @abstractmethod
    async def publish(self, message: Message) -> list[str]:
        """Deliver a message; returns the participants it was delivered to."""

    @abstractmethod
    def statistics(self) -> dict[str, Any]: ...


class InMemoryBus(Bus):
    """The embedded bus: one process, asyncio mailboxes, order kept per conversation."""

    def __init__(self, on_publish: Callable[[Message, list[str]], None] | None = None) -> None:
        self._mailboxes: dict[str, Mailbox | None] = {}
        self._observers: dict[str, Mailbox] = {}
        self._conversations: dict[str, Conversation] = {}
        self._on_publish = on_publish
        self.published = 0
        self.delivered = 0
        self._lock = asyncio.Lock()

    def register(self, participant: str, mailbox: Mailbox | None, *, observer: bool = False) -> None:
        name = participant.lower()
        self._mailboxes[name] = mailbox
        if observer and mailbox is not None:
            self._observers[name] = mailbox

    def unregister(self, participant: str) -> None:
        name = participant.lower()
        self._mailboxes.pop(name, None)
        self._observers.pop(name, None)

    def is_participant(self, name: str) -> bool:
        return name.lower() in self._mailboxes

    def participants(self) -> list[str]:
        return list(self._mailboxes)

    def mailbox(self, participant: str) -> Mailbox | None:
        return self._mailboxes.get(participant.lower())

    def create_conversation(
        self, name: str, participants: list[str] | None = None, tags: list[str] | None = None,
        *, conversation_id: str | None = None, created: float | None = None,
    ) -> Conversation:
        cid = conversation_id or new_id()
        if cid in self._conversations:
            raise UsageError(f"conversation {cid!r} already exists")
        conv = Conversation(
            cid, name, list(dict.fromkeys(p.lower() for p in participants or [])),
            list(tags or []), created or time.time(),
        )
        self._conversations[cid] = conv
        return conv

    def get_conversation(self, conversation_id: str) -> Conversation:
        try:
            return self._conversations[conversation_id]
        except KeyError:
            raise UsageError(f"unknown conversation {conversation_id!r}") from None

    def conversations(self) -> list[Conversation]:
        return list(self._conversations.values())

    def join(self, conversation_id: str, participant: str) -> Conversation:
        conv = self.get_conversation(conversation_id)
        name = participant.lower()
        if name not in conv.participants:
            conv.participants.append(name)
        return conv

    def leave(self, conversation_id: str, participant: str) -> Conversation:
        conv = self.get_conversation(conversation_id)
        name = participant.lower()
        if name in conv.participants:
            conv.participants.remove(name)
        return conv

    async def publish(self, message: Message) -> list[str]:
        conv = self.get_conversation(message.conversation)
        mailboxes = self._mailboxes
        members = conv.participants
        if message.sender not in members:
            members.append(message.sender)
        mentioned = [m for m in message.mentions if m in mailboxes]
        for name in mentioned:
            if name not in members:
                members.append(name)
        if mentioned:
            targets = [(name, True) for name in mentioned if name != message.sender]
        else:
            targets = [(name, False) for name in members if name != message.sender]
        conv.messages += 1
        self.published += 1
        if self._on_publish is not None:
            self._on_publish(message, [t[0] for t in targets])
        recipients: list[str] = []
        # One lock keeps the order of every conversation even when a put waits for room.
        async with self._lock:
            if self._observers:
                snapshot = conv.to_dict()
                for name, box in self._observers.items():
                    if name != message.sender:
                        await box.put(Observation(message, snapshot))
            for name, addressed in targets:
                target = mailboxes.get(name)
                if target is None:
                    continue
                await target.put(Delivery(message, addressed))
                recipients.append(name)
        self.delivered += len(recipients)
        return recipients

    def statistics(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "delivered": self.delivered,
            "conversations": len(self._conversations),
            "participants": len(self._mailboxes),
            "mailboxes": {
                name: box.statistics() for name, box in self._mailboxes.items() if box is not None
            },
        }
