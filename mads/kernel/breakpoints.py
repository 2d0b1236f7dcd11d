"""Breakpoints on the bus: a matching message is held before delivery, and only its conversation waits.

A breakpoint matches by any of: the recipient MAD (`mad`), `sender`, `conversation`, `tag`,
`tool` (a deterministic command to that tool) and `pattern` (a regex searched in the content);
the fields given must all match. A held message can be continued (as it is, or with its text
replaced), dropped, or stepped (continued, and the next message of its conversation held
whatever it is). While a message is held, every later message of its conversation waits
behind it, in order; other conversations flow on. `break_hit`, `break_continue` (original and
delivered text) and `break_drop` are journalled; `mad rerun` feeds what was delivered.
"""
from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .events import BreakContinue, BreakDrop, BreakHit
from .message import Message

FIELDS = ("mad", "sender", "conversation", "tag", "tool", "pattern")


@dataclass
class Breakpoint:
    id: str
    mad: str | None = None
    sender: str | None = None
    conversation: str | None = None
    tag: str | None = None
    tool: str | None = None
    pattern: str | None = None
    hits: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **{name: getattr(self, name) for name in FIELDS if getattr(self, name)},
                "hits": self.hits}

    def matches(self, message: Message, recipients: list[str]) -> bool:
        if self.mad is not None and self.mad not in recipients:
            return False
        if self.sender is not None and message.sender != self.sender:
            return False
        if self.conversation is not None and message.conversation != self.conversation:
            return False
        if self.tag is not None and self.tag not in message.tags:
            return False
        if self.tool is not None:
            command = message.command
            if command is None or self.tool not in (command.tool, f"{command.mad}_{command.tool}"):
                return False
        if self._regex is not None and not self._regex.search(message.content):
            return False
        return True


@dataclass
class Held:
    """A message waiting at a breakpoint (or behind one in its conversation)."""

    held_id: str
    message: Message
    breakpoint: str | None
    """The breakpoint it hit; None for a message waiting behind another of its conversation."""
    since: float
    released: asyncio.Future[Message | None]
    """Resolves with the message as delivered, or None when dropped."""

    def to_dict(self) -> dict[str, Any]:
        return {"held_id": self.held_id, "breakpoint": self.breakpoint, "conversation": self.message.conversation,
                "sender": self.message.sender, "content": self.message.content, "message_id": self.message.id,
                "held_s": round(time.monotonic() - self.since, 3), "waiting_behind": self.breakpoint is None}


class Breakpoints:
    """The breakpoints of one ecosystem and the messages they hold."""

    def __init__(self, hub: Any, deliver: Callable[[Message], Awaitable[Any]],
                 recipients: Callable[[Message], Awaitable[list[str]]]) -> None:
        self.hub = hub
        self._deliver = deliver
        self._recipients = recipients
        self.points: dict[str, Breakpoint] = {}
        self.held: dict[str, Held] = {}
        self._lines: dict[str, deque[Held]] = {}
        """Per conversation: its held message first, then those waiting behind it, in order."""
        self._step: set[str] = set()
        """Conversations whose next message is held whatever it is (after a step)."""
        self._ids = itertools.count(1)

    @property
    def active(self) -> bool:
        """True when publishing must look here (some breakpoint, or something held or stepped)."""
        return bool(self.points or self._lines or self._step)

    # breakpoints -----------------------------------------------------------------
    def add(self, **criteria: Any) -> Breakpoint:
        given = {k: (str(v).strip().lstrip("@").lower() if k in ("mad", "sender") else str(v).strip())
                 for k, v in criteria.items() if v not in (None, "")}
        unknown = set(given) - set(FIELDS)
        if unknown:
            raise UsageError(f"a breakpoint matches by {', '.join(FIELDS)}, not {', '.join(sorted(unknown))}")
        if not given:
            raise UsageError(f"a breakpoint needs at least one of {', '.join(FIELDS)}")
        point = Breakpoint(f"b{next(self._ids)}", **given)
        if point.pattern is not None:
            try:
                point._regex = re.compile(point.pattern)
            except re.error as exc:
                raise UsageError(f"pattern is not a regular expression: {exc}") from None
        if point.tag is not None:
            point.tag = point.tag.lstrip("#")
        self.points[point.id] = point
        return point

    def remove(self, point_id: str) -> None:
        if self.points.pop(point_id, None) is None:
            raise UsageError(f"no breakpoint {point_id!r} (mad_breakpoints lists them)")

    def held_message(self, message_id: str) -> Held | None:
        """The hold on this message, if it is held (or waits in line)."""
        return next((h for h in self.held.values() if h.message.id == message_id), None)

    def listing(self) -> dict[str, Any]:
        return {"breakpoints": [p.to_dict() for p in self.points.values()],
                "held": [h.to_dict() for line in self._lines.values() for h in line]}

    # publishing -----------------------------------------------------------------
    async def _hit(self, message: Message) -> Breakpoint | None:
        """The breakpoint this message hits (or the step that holds it), if any."""
        point: Breakpoint | None = None
        if message.conversation in self._step:
            self._step.discard(message.conversation)
            point = Breakpoint("step")
        elif self.points:
            recipients = await self._recipients(message)
            point = next((p for p in self.points.values() if p.matches(message, recipients)), None)
        if point is not None:
            point.hits += 1
        return point

    async def _emit_hit(self, held: Held) -> None:
        message = held.message
        self.hub.emit(BreakHit(mad=None, conversation=message.conversation, correlation_id=message.correlation_id,
                               held_id=held.held_id, breakpoint=held.breakpoint or "", message_id=message.id,
                               sender=message.sender, content=message.content,
                               mads=await self._recipients(message)))

    async def intercept(self, message: Message) -> Held | None:
        """Hold the message if a breakpoint matches or its conversation waits; None lets it through."""
        line = self._lines.get(message.conversation)
        if line:  # its conversation waits: in line, in order
            return self._hold(message, None, line)
        hit = await self._hit(message)
        if hit is None:
            return None
        held = self._hold(message, hit.id, self._lines.setdefault(message.conversation, deque()))
        await self._emit_hit(held)
        return held

    def _hold(self, message: Message, point: str | None, line: deque[Held]) -> Held:
        held = Held(f"h{next(self._ids)}", message, point, time.monotonic(),
                    asyncio.get_running_loop().create_future())
        line.append(held)
        self.held[held.held_id] = held
        return held

    def _head(self, held_id: str) -> Held:
        held = self.held.get(held_id)
        if held is None:
            raise UsageError(f"no held message {held_id!r} (mad_breakpoints lists them)")
        line = self._lines.get(held.message.conversation)
        if not line or line[0] is not held:
            raise UsageError(f"{held_id} waits behind another message of its conversation: release that one first")
        return held

    async def resume(self, held_id: str, content: str | None = None, *, step: bool = False) -> dict[str, Any]:
        """Deliver the held message (its text replaced by `content`), then what waited behind it."""
        held = self._head(held_id)
        original = held.message.content
        message = held.message
        if content is not None and content != original:
            message = Message.create(message.conversation, message.sender, content,
                                     reply_to=message.reply_to, correlation_id=message.correlation_id)
            message.id = held.message.id
        self.hub.emit(BreakContinue(mad=None, conversation=message.conversation,
                                    correlation_id=message.correlation_id, held_id=held_id, message_id=message.id,
                                    original=original, delivered=message.content, step=step))
        await self._release(held, message)
        if step:
            self._step.add(message.conversation)
        await self._flow(message.conversation)
        return {"held_id": held_id, "delivered": message.content, "edited": message.content != original}

    async def drop(self, held_id: str) -> dict[str, Any]:
        held = self._head(held_id)
        self.hub.emit(BreakDrop(mad=None, conversation=held.message.conversation,
                                correlation_id=held.message.correlation_id, held_id=held_id,
                                message_id=held.message.id, content=held.message.content))
        self._pop(held)
        if not held.released.done():
            held.released.set_result(None)
        await self._flow(held.message.conversation)
        return {"held_id": held_id, "dropped": True}

    def _pop(self, held: Held) -> None:
        line = self._lines.get(held.message.conversation)
        if line and line[0] is held:
            line.popleft()
        self.held.pop(held.held_id, None)
        if line is not None and not line:
            self._lines.pop(held.message.conversation, None)

    async def _release(self, held: Held, message: Message) -> None:
        self._pop(held)
        await self._deliver(message)
        if not held.released.done():
            held.released.set_result(message)

    async def _flow(self, conversation: str) -> None:
        """Deliver what waited behind, in order, until one hits a breakpoint (or the step holds it)."""
        line = self._lines.get(conversation)
        while line:
            head = line[0]
            if head.breakpoint is not None:
                return
            hit = await self._hit(head.message)
            if hit is not None:  # it stays first in line, held now
                head.breakpoint = hit.id
                await self._emit_hit(head)
                return
            line.popleft()
            self.held.pop(head.held_id, None)
            if not line:
                self._lines.pop(conversation, None)
            await self._deliver(head.message)
            if not head.released.done():
                head.released.set_result(head.message)
            line = self._lines.get(conversation)

    def release_all(self) -> None:
        """At stop: whoever waits on a held message stops waiting (as if dropped)."""
        for held in list(self.held.values()):
            if not held.released.done():
                held.released.set_result(None)
        self.held.clear()
        self._lines.clear()
        self._step.clear()
