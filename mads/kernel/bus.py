"""The conversation bus: the `Bus` interface, bounded mailboxes, and the in-memory implementation."""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import MadError, UsageError
from .message import Message, new_id


class MailboxFull(MadError):
    """A mailbox cannot take a message now: at its bound (send_nowait) or with too many publishers waiting."""


@dataclass(slots=True)
class Delivery:
    """A message delivered to a participant; addressed when it mentions the participant."""

    message: Message
    addressed: bool
    receipt: Any = None
    """Where an entry of a distributed inbox is answered and acknowledged (None in one process)."""


@dataclass(slots=True)
class Observation:
    """A message seen by an observer of every conversation, with the conversation as it was."""

    message: Message
    conversation: dict[str, Any]
    receipt: Any = None


class Mailbox:
    """A bounded FIFO with backpressure in which a later put never overtakes an earlier one.

    An item goes in at once when there is room and nobody waits; otherwise it takes its place in
    line and its publisher waits until the consumer makes room. The line keeps publication order,
    and it holds back only the publishers of this mailbox: nothing else waits on it. Past
    `max_waiting` items in line a put is refused with MailboxFull instead of waiting.
    """

    __slots__ = ("_items", "_line", "_getters", "maxsize", "max_waiting", "delivered", "taken", "waits",
                 "high_water", "refused")

    def __init__(self, maxsize: int = 1000, max_waiting: int | None = None) -> None:
        self._items: deque[Any] = deque()
        self._line: deque[tuple[Any, asyncio.Future[None]]] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self.maxsize = maxsize
        self.max_waiting = 10 * maxsize if max_waiting is None else max_waiting
        self.delivered = 0
        self.taken = 0
        self.waits = 0
        self.high_water = 0
        self.refused = 0

    # putting -----------------------------------------------------------------
    def refuses(self) -> bool:
        """True when a put now would be refused: it would have to wait and the line is at max_waiting."""
        return bool(self._line or len(self._items) >= self.maxsize) and len(self._line) >= self.max_waiting

    def enter(self, item: Any) -> asyncio.Future[None] | None:
        """Put the item in, or in line; returns the future to await for room, or None when it is in.

        Synchronous, so several mailboxes can be entered in one step and keep one order.
        """
        items = self._items
        self.delivered += 1
        if not self._line and len(items) < self.maxsize:
            items.append(item)
            depth = len(items)
            if depth > self.high_water:
                self.high_water = depth
            if self._getters:
                self._wake_getter()
            return None
        if len(self._line) >= self.max_waiting:
            self.delivered -= 1
            self.refused += 1
            raise MailboxFull(f"mailbox full: {len(items)} queued and {len(self._line)} waiting")
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append((item, admitted))
        self.waits += 1
        return admitted

    async def put(self, item: Any) -> None:
        """Put an item in, waiting in line while the mailbox is full."""
        admitted = self.enter(item)
        if admitted is not None:
            await admitted

    def put_nowait(self, item: Any) -> None:
        """Put an item in now; MailboxFull when it would have to wait."""
        if self._line or len(self._items) >= self.maxsize:
            self.refused += 1
            raise MailboxFull(f"mailbox full ({self.maxsize})")
        self.enter(item)

    # taking ------------------------------------------------------------------
    async def get(self) -> Any:
        items = self._items
        while not items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if items and not getter.cancelled():  # woken and cancelled at once: pass the wake on
                    self._wake_getter()
                raise
        return self._take()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._take()

    def _take(self) -> Any:
        item = self._items.popleft()
        self.taken += 1
        if self._line:
            self._admit()
        return item

    def _admit(self) -> None:
        """Move items from the line into the mailbox while there is room, releasing their publishers."""
        items, line = self._items, self._line
        while line and len(items) < self.maxsize:
            item, admitted = line.popleft()
            items.append(item)
            if not admitted.done():
                admitted.set_result(None)
        if len(items) > self.high_water:
            self.high_water = len(items)
        if items and self._getters:
            self._wake_getter()

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def waiting(self) -> int:
        """Items in line for room (their publishers wait)."""
        return len(self._line)

    def statistics(self) -> dict[str, int]:
        return {
            "depth": len(self._items),
            "maxsize": self.maxsize,
            "waiting": len(self._line),
            "delivered": self.delivered,
            "taken": self.taken,
            "waits": self.waits,
            "high_water": self.high_water,
            "refused": self.refused,
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
    """Conversations with participants; delivery by mention and by membership, in order.

    The registry calls are async: a distributed bus keeps the registry on a server.
    """

    @abstractmethod
    async def register(self, participant: str, mailbox: Mailbox | None, *, observer: bool = False) -> None:
        """Add a participant; None for one that reads no mailbox (the human, an external client)."""

    @abstractmethod
    async def unregister(self, participant: str) -> None: ...

    @abstractmethod
    async def is_participant(self, name: str) -> bool: ...

    @abstractmethod
    async def create_conversation(
        self, name: str, participants: list[str] | None = None, tags: list[str] | None = None,
        *, conversation_id: str | None = None, created: float | None = None, messages: int = 0,
    ) -> Conversation: ...

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation:
        """The conversation; UsageError when there is none."""

    @abstractmethod
    async def conversations(self) -> list[Conversation]: ...

    @abstractmethod
    async def join(self, conversation_id: str, participant: str) -> Conversation: ...

    @abstractmethod
    async def leave(self, conversation_id: str, participant: str) -> Conversation: ...

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

    async def register(self, participant: str, mailbox: Mailbox | None, *, observer: bool = False) -> None:
        name = participant.lower()
        self._mailboxes[name] = mailbox
        if observer and mailbox is not None:
            self._observers[name] = mailbox

    async def unregister(self, participant: str) -> None:
        name = participant.lower()
        self._mailboxes.pop(name, None)
        self._observers.pop(name, None)

    async def is_participant(self, name: str) -> bool:
        return name.lower() in self._mailboxes

    def participants(self) -> list[str]:
        return list(self._mailboxes)

    def mailbox(self, participant: str) -> Mailbox | None:
        return self._mailboxes.get(participant.lower())

    async def create_conversation(
        self, name: str, participants: list[str] | None = None, tags: list[str] | None = None,
        *, conversation_id: str | None = None, created: float | None = None, messages: int = 0,
    ) -> Conversation:
        cid = conversation_id or new_id()
        if cid in self._conversations:
            raise UsageError(f"conversation {cid!r} already exists")
        conv = Conversation(
            cid, name, list(dict.fromkeys(p.lower() for p in participants or [])),
            list(tags or []), created or time.time(), messages,
        )
        self._conversations[cid] = conv
        return conv

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return self._conversation(conversation_id)

    def _conversation(self, conversation_id: str) -> Conversation:
        try:
            return self._conversations[conversation_id]
        except KeyError:
            raise UsageError(f"unknown conversation {conversation_id!r}") from None

    async def conversations(self) -> list[Conversation]:
        return list(self._conversations.values())

    async def join(self, conversation_id: str, participant: str) -> Conversation:
        conv = self._conversation(conversation_id)
        name = participant.lower()
        if name not in conv.participants:
            conv.participants.append(name)
        return conv

    async def leave(self, conversation_id: str, participant: str) -> Conversation:
        conv = self._conversation(conversation_id)
        name = participant.lower()
        if name in conv.participants:
            conv.participants.remove(name)
        return conv

    async def publish(self, message: Message) -> list[str]:
        """Deliver to every recipient in one synchronous step, then wait for room where a mailbox is full.

        Entering every mailbox before any wait keeps one order per conversation in each mailbox
        with no lock: a full mailbox holds back only the publishers sending to it. A message that
        a full line would refuse is refused whole (MailboxFull), before anyone receives it.
        """
        conv = self._conversation(message.conversation)
        mailboxes = self._mailboxes
        members = conv.participants
        mentioned = [m for m in message.mentions if m in mailboxes]
        if mentioned:
            targets = [(name, True) for name in mentioned if name != message.sender]
        else:
            targets = [(name, False) for name in members if name != message.sender]
        boxes = [(name, box, addressed) for name, addressed in targets if (box := mailboxes.get(name)) is not None]
        observers = [(name, box) for name, box in self._observers.items() if name != message.sender]
        for name, box in [*observers, *((n, b) for n, b, _ in boxes)]:
            if box.refuses():
                box.refused += 1
                raise MailboxFull(f"@{name}'s mailbox is full ({len(box)} queued, {box.waiting} waiting): "
                                  "try again when it has drained")
        if message.sender not in members:
            members.append(message.sender)
        for name in mentioned:
            if name not in members:
                members.append(name)
        conv.messages += 1
        self.published += 1
        if self._on_publish is not None:
            self._on_publish(message, [t[0] for t in targets])
        waits: list[asyncio.Future[None]] = []
        if observers:
            snapshot = conv.to_dict()
            for _, box in observers:
                admitted = box.enter(Observation(message, snapshot))
                if admitted is not None:
                    waits.append(admitted)
        recipients: list[str] = []
        for name, box, addressed in boxes:
            admitted = box.enter(Delivery(message, addressed))
            if admitted is not None:
                waits.append(admitted)
            recipients.append(name)
        self.delivered += len(recipients)
        if waits:
            await asyncio.gather(*waits)
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
