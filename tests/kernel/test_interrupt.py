"""A MAD stopped while its handler runs: an error reply only for a message it had not answered yet."""
from __future__ import annotations

import asyncio
from typing import Any

from mads.kernel import MAD, ListSink, Message
from tests.helpers import wait_for


class Lingerer(MAD):
    """Replies at once, then keeps working on the message."""

    async def on_message(self, message: Message, addressed: bool) -> None:
        if not addressed:
            return
        if "answer" in message.content:
            await self.ctx.publish(message.reply(self.name, "answered"))
        await asyncio.Event().wait()  # still busy with it when the ecosystem stops


async def test_stopping_a_handler_that_already_replied_sends_no_error_and_one_that_had_not_does(
        make_ecosystem: Any) -> None:
    async with make_ecosystem([Lingerer]) as eco:
        sink = ListSink(lambda e: e.kind == "message" and e.mad == "lingerer")
        eco.hub.add_sink(sink)
        _, replies = await eco.send("@Lingerer answer me", timeout=5)
        assert [r.content for r in replies] == ["@human answered"]
    assert [e.payload["message"]["content"] for e in sink.events] == ["@human answered"]

    async with make_ecosystem([Lingerer]) as eco:
        sink = ListSink(lambda e: e.kind == "message" and e.mad == "lingerer")
        eco.hub.add_sink(sink)
        await eco.publish(Message.create("main", "human", "@Lingerer think it over"))
        await wait_for(lambda: not eco.runners["lingerer"]._idle.is_set(), what="the handler running")
    (error,) = [e.payload["message"]["content"] for e in sink.events]
    assert "was interrupted while running lingerer.on_message" in error
