"""Messages on the bus, as the ecosystem sends them: publishing, waiting for replies, checking mentions.

A part of the Ecosystem (it mixes this in); the attributes below are the ecosystem's.
"""
from __future__ import annotations

import asyncio
import difflib
import time
from typing import TYPE_CHECKING

from .errors import MadError, UsageError
from .events import HumanInput
from .hub import about_to_wait, current_receipt
from .message import Message

if TYPE_CHECKING:
    from .breakpoints import Breakpoints
    from .config import Config

if TYPE_CHECKING:
    from .bus import Bus
    from .distributed.node import Node
    from .hub import EventHub
    from .mad import MAD
    from .supervisor import MADRunner

HUMAN = "human"
DEFAULT_CONVERSATION = "main"


class Conversing:
    """Publishing, exchanges of messages and replies, and the checks a human's message goes through."""

    bus: Bus
    hub: EventHub
    node: Node | None
    runners: dict[str, MADRunner]
    last_seen: dict[str, float]
    _waiters: dict[str, asyncio.Queue[Message]]
    breaks: Breakpoints
    config: Config

    if TYPE_CHECKING:
        def load(self) -> None: ...

        def remote(self) -> dict[str, type[MAD]]: ...

    def _on_publish(self, message: Message, recipients: list[str]) -> None:
        """Called by the bus as a message is published, before any delivery waits for room.

        Whoever waits for a reply to the message this one answers gets it here: a MAD blocked in
        `ask` must not wait for its own reply to find room in its own full mailbox.
        """
        self.last_seen[message.sender] = message.created
        if message.reply_to is not None:
            waiter = self._waiters.get(message.reply_to)
            if waiter is not None:
                waiter.put_nowait(message)
        runner = self.runners.get(message.sender)
        if runner is not None:
            runner.account.messages_out += 1
            if message.reply_to is not None:
                runner.last_answered = message.reply_to
        if self.hub.sinks:  # (the unrecorded bus pays nothing for events)
            self.hub.emit_message(message, recipients)

    def scrub(self, message: Message) -> None:
        """Keep secret arguments of a command out of everything that records the message."""
        command = message.command
        if command is None or command.mad not in self.runners:
            message.content = self.hub.redactor.text(message.content)
            return
        tools = self.runners[command.mad].cls.tools
        spec = tools.get(f"{command.mad}_{command.tool}") or tools.get(command.tool)
        if spec is None or not spec.secret_params:
            message.content = self.hub.redactor.text(message.content)
            return
        for key in spec.secret_params:
            value = command.args.get(key)
            value = getattr(value, "value", value)
            if isinstance(value, str):
                self.hub.redactor.add(value)
        message.content = self.hub.redactor.text(message.content)

    async def publish(self, message: Message) -> list[str]:
        """Put a message on the bus; resolves whoever waits for replies to the message it answers.

        A message held at a breakpoint (or behind one in its conversation) is delivered when released.
        """
        self.scrub(message)
        receipt = current_receipt.get()
        if receipt is not None and receipt.capture(message):  # sent with its inbox entry's acknowledgement
            return []
        if self.breaks.active and await self.breaks.intercept(message) is not None:
            return []
        return await self.bus.publish(message)

    async def _break_recipients(self, message: Message) -> list[str]:
        """Who a message would reach: the MADs it mentions, else its conversation's other members."""
        mads = set(self.runners)
        mentioned = [m for m in message.mentions if m in mads]
        if mentioned:
            return mentioned
        try:
            conversation = await self.bus.get_conversation(message.conversation)
        except MadError:
            return []
        return [p for p in conversation.participants if p in mads and p != message.sender]

    async def exchange(self, message: Message, *, timeout: float, expect: int) -> list[Message]:
        """Publish a message and collect up to `expect` replies to it within the timeout."""
        about_to_wait()
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._waiters[message.id] = queue
        replies: list[Message] = []
        try:
            if self.node is not None:  # replies published in other processes come back to this one
                await self.node.expect_replies(message.id, timeout)
            await self.publish(message)
            held = self.breaks.held_message(message.id)
            if held is not None:  # time held at a breakpoint does not count against the timeout
                if await held.released is None:
                    return replies  # dropped
            deadline = time.monotonic() + timeout
            while len(replies) < expect:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    reply = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if all(reply.id != seen.id for seen in replies):  # (a reply can come by two ways)
                    replies.append(reply)
        finally:
            self._waiters.pop(message.id, None)
        return replies

    def reply_arrived(self, message: Message) -> None:
        """A reply published in another process (or read from a local inbox): to whoever waits for it here."""
        if message.reply_to is not None:
            waiter = self._waiters.get(message.reply_to)
            if waiter is not None:
                waiter.put_nowait(message)

    async def _ensure_conversation(self, conversation_id: str) -> None:
        try:
            await self.bus.get_conversation(conversation_id)
        except UsageError:
            await self.bus.create_conversation(conversation_id, [HUMAN], conversation_id=conversation_id)

    async def send(self, content: str, *, conversation: str | None = None, sender: str = HUMAN,
                   timeout: float = 60.0) -> tuple[Message, list[Message]]:
        """A message from a human (or external client) onto the bus; returns it and the replies it caused.

        Waits for one reply from each MAD the message mentions, or until the timeout.
        """
        if not content or not content.strip():
            raise UsageError("the message is empty")
        conversation = conversation or DEFAULT_CONVERSATION
        if conversation == DEFAULT_CONVERSATION:
            await self._ensure_conversation(conversation)
        else:
            await self.bus.get_conversation(conversation)
        sender = sender.lower()
        if not await self.bus.is_participant(sender):
            await self.bus.register(sender, None)
        message = Message.create(conversation, sender, content)
        await self.check_mentions(message)
        self.scrub(message)
        mads = set(self.runners) | set(self.remote())
        addressed = [m for m in message.mentions if m in mads and m != sender]
        if not addressed:
            conv = await self.bus.get_conversation(conversation)
            if not any(p in mads for p in conv.participants):  # nobody would hear it: the default MAD answers
                default = self.config.default_mad.lower().lstrip("@")
                if default not in mads:
                    raise UsageError(f"mention a MAD with @Name, for example: @Dewey search query=hello "
                                     f"(the default MAD {default!r} is not running)")
                message.mentions = [*message.mentions, default]
                addressed = [default]
        self.hub.emit(HumanInput(mad=sender, conversation=conversation, correlation_id=message.correlation_id,
                                 content=message.content, message_id=message.id))
        replies = await self.exchange(message, timeout=timeout, expect=len(addressed))
        return message, replies

    async def check_mentions(self, message: Message) -> None:
        """UsageError for a mention of nobody, with the closest name; needs only load()."""
        self.load()
        known = set(self.runners) | set(self.remote()) | {HUMAN}
        unknown = [m for m in message.mentions if m not in known and not await self.bus.is_participant(m)]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known - {HUMAN}), n=1)
            hint = f" (did you mean @{close[0]}?)" if close else f" (the MADs are {', '.join('@' + n for n in self.runners)})"
            raise UsageError(f"no participant named @{unknown[0]}{hint}")

    async def settle(self, *, quiet_rounds: int = 3, timeout: float = 30.0) -> None:
        """Wait until every MAD is idle with an empty mailbox for a few loop turns in a row."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < quiet_rounds:
            await asyncio.sleep(0)
            busy = any(len(r.mailbox) or r._held or not r._idle.is_set() for r in self.runners.values())
            calm = 0 if busy else calm + 1
            if time.monotonic() > deadline:
                raise MadError(f"the ecosystem did not settle within {timeout:g} s")

