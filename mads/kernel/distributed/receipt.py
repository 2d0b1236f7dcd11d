"""A receipt for one inbox entry: how its handling ends (result, error, replies), to be answered and acknowledged."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from ..message import Message
from . import once


@dataclass
class Receipt:
    """One entry of a MAD's inbox being handled in this process."""

    stream: str
    entry: str
    """The entry's id in its stream (what is acknowledged)."""
    once: str | None
    """The id its answer is recorded under (a message's or a call's id); None for an observation."""
    message_id: str | None = None
    """For a delivered message: replies to it are held back and sent with the acknowledgement."""
    call: dict[str, Any] | None = None
    """For a tool call from another process: where its result goes."""
    replies: list[Message] = field(default_factory=list)
    done: asyncio.Future[tuple[Any, BaseException | None]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    def capture(self, message: Message) -> bool:
        """Hold back a reply to the delivered message (published when the entry is acknowledged)."""
        if self.message_id is None or self.done.done() or message.reply_to != self.message_id:
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

    def commit(self, db: Any, result: Any, changed: bool) -> None:
        """Inside the handler's transaction: record the answer with the effects.

        A delivered message that changed nothing and was answered by nothing needs no record: handling
        it again changes nothing either. A call always has an answer to record.
        """
        if self.once is not None and (changed or self.replies or self.message_id is None):
            once.record(db, self.once, self.answer(result))

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self.done.done():
            self.done.set_result((result, error))
