"""A receipt for one inbox entry: how its handling ends (result, error, replies), to be answered and acknowledged."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import to_jsonable_python

from ..message import Message
from . import once


class Receipt:
    """One entry of a MAD's inbox being handled in this process.

    No future per entry: `finish` hands the outcome straight to `settle` (the node queues the answer
    and the acknowledgement), once.
    """

    __slots__ = ("call", "closed", "entry", "finished", "message_id", "once", "redelivered", "replies", "settle",
                 "stream")

    def __init__(self, stream: str, entry: str, once_id: str | None, message_id: str | None = None,
                 call: dict[str, Any] | None = None,
                 settle: Callable[[Receipt, Any, BaseException | None], None] | None = None) -> None:
        self.stream = stream
        self.entry = entry
        """The entry's id in its stream (what is acknowledged)."""
        self.once = once_id
        """The id its answer is recorded under (a message's or a call's id); None for an observation."""
        self.message_id = message_id
        """For a delivered message: replies to it are held back and sent with the acknowledgement."""
        self.call = call
        """For a tool call from another process: where its result goes."""
        self.replies: list[Message] = []
        self.settle = settle
        """Called once with (receipt, result, error) when the handling is over and its effects committed."""
        self.redelivered = False
        """Claimed from another consumer (or again): it may have been handled before; its record is looked up."""
        self.closed = False
        """The handler has returned: later replies are not held back (they are sent as they are published)."""
        self.finished = False

    def capture(self, message: Message) -> bool:
        """Hold back a reply to the delivered message (published when the entry is acknowledged)."""
        if self.message_id is None or self.closed or message.reply_to != self.message_id:
            return False
        self.replies.append(message)
        return True

    def answer(self, result: Any) -> dict[str, Any]:
        """What is recorded and sent for a successful handling."""
        if self.message_id is not None:
            return {"replies": [m.to_dict() for m in self.replies]}
        return {"result": to_jsonable_python(result, fallback=str)}

    def transaction(self, db: Any) -> Any:
        """The transaction the handler runs in, so its effects and its recorded answer commit together."""
        return once.transaction(db)

    def group(self, db: Any) -> once.Group:
        """A transaction for this entry's handler and those of the entries queued behind it (group commit)."""
        return once.Group(db)

    def needs_record(self, changed: bool) -> bool:
        """A delivered message that changed nothing and was answered by nothing needs no record: handling
        it again changes nothing either. A call always has an answer to record."""
        return self.once is not None and (changed or bool(self.replies) or self.message_id is None)

    def commit(self, db: Any, result: Any, changed: bool) -> None:
        """Inside the handler's transaction: record the answer with the effects."""
        if self.needs_record(changed):
            once.record(db, self.once, self.answer(result))  # type: ignore[arg-type]

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """The handling is over (its effects committed, or rolled back with the error): answer and acknowledge."""
        self.closed = True
        if not self.finished:
            self.finished = True
            if self.settle is not None:
                self.settle(self, result, error)
