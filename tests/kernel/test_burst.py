"""A burst bigger than a mailbox, sent while the ecosystem is paused: everything drains, nothing hangs.

The bus used to hold one lock for the whole ecosystem while it waited for room in a full
mailbox, so the MAD's own reply waited on that lock and the MAD wedged for good.
"""
from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest
from mcp import Client

from mads.kernel import MadError, Message
from mads.kernel.gateway import Gateway
from tests.helpers import wait_for

BURST_MADS = ["rogers", "dewey", "horace", "turing"]
"""Horace takes the burst; Rogers and Dewey see every message; Turing is the neighbour that must answer."""


def replies_in_order(sent: list[Message], outcomes: list[object]) -> dict[str, list[str]]:
    """Per conversation, the ids of the messages in the order they were sent, and of those answered."""
    order: dict[str, list[str]] = defaultdict(list)
    for message, outcome in zip(sent, outcomes):
        if not isinstance(outcome, BaseException):
            order[message.conversation].append(message.id)
    return order


@pytest.mark.parametrize("run", range(10))
async def test_a_burst_of_3000_to_a_mailbox_of_1000_drains_while_the_neighbours_answer(make_ecosystem, run) -> None:
    async with make_ecosystem(only=BURST_MADS, mailbox_size=1000, sample_interval=0) as eco:
        conversations = [(await eco.bus.create_conversation(f"c{i}", ["human"])).id for i in range(6)]
        eco.pause()
        sent: list[Message] = []
        answered_at: list[int] = []

        async def send(i: int) -> tuple[Message, list[Message]]:
            message, replies = await eco.send(f"@Horace list_files prefix=n{i:04d}",
                                              conversation=conversations[i % len(conversations)], timeout=300)
            answered_at.append(i)
            return message, replies

        tasks = [asyncio.create_task(send(i)) for i in range(3000)]
        await asyncio.sleep(0)  # every publish has entered the bus (each is synchronous up to its first wait)
        horace = eco.bus.statistics()["mailboxes"]["horace"]
        assert horace["depth"] == 1000 and horace["depth"] + horace["waiting"] + horace["taken"] == 3000
        eco.resume()
        neighbour = await asyncio.wait_for(eco.call_tool("turing_list_secrets", {}), 30)
        assert neighbour == [] and len(answered_at) < 3000  # Turing answered while Horace's backlog drained
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert all(isinstance(o, MadError) for o in refused)
        for outcome in outcomes:
            if not isinstance(outcome, BaseException):
                message, replies = outcome
                sent.append(message)
                assert len(replies) == 1 and replies[0].sender == "horace" and "success" in replies[0].tags
        assert len(sent) + len(refused) == 3000 and not refused
        handled = [e.payload["message"] for e in eco.events.of("message")
                   if e.payload["message"]["sender"] == "horace"]
        by_conversation: dict[str, list[str]] = defaultdict(list)
        for reply in handled:
            by_conversation[reply["conversation"]].append(reply["reply_to"])
        expected: dict[str, list[str]] = defaultdict(list)
        for message in sent:
            expected[message.conversation].append(message.id)
        assert by_conversation == expected  # each conversation answered in the order it was sent
        assert await eco.call_tool("horace_write_file", {"path": "after.txt", "content": "ok"})


async def test_past_the_waiting_line_a_message_is_refused_whole_with_one_line(make_ecosystem) -> None:
    async with make_ecosystem(only=["horace"], mailbox_size=10, mailbox_waiting=20, sample_interval=0) as eco:
        eco.pause()
        tasks = [asyncio.create_task(eco.send(f"@Horace list_files prefix=n{i}", timeout=60)) for i in range(50)]
        await asyncio.sleep(0)
        eco.resume()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        answered = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(answered) == 30 and all(len(replies) == 1 for _, replies in answered)
        assert len(refused) == 20
        assert {str(o) for o in refused} == {"@horace's mailbox is full (10 queued, 20 waiting): "
                                             "try again when it has drained"}
        assert eco.bus.statistics()["mailboxes"]["horace"]["refused"] == 20


@pytest.mark.parametrize("run", range(10))
async def test_a_burst_of_1500_mad_send_over_the_gateway_while_paused_is_answered_after_resume(
        make_ecosystem, run) -> None:
    async with make_ecosystem(only=BURST_MADS, mailbox_size=1000, sample_interval=0) as eco, \
            Client(Gateway(eco)) as client:
        await client.call_tool("mad_pause", {})
        calls = [asyncio.create_task(client.call_tool("mad_send", {"content": f"@Horace list_files prefix=g{i}",
                                                                   "timeout": 300}))
                 for i in range(1500)]
        await wait_for(lambda: eco.bus.statistics()["mailboxes"]["horace"]["delivered"] == 1500,
                       timeout=60, what="every mad_send on the bus")
        horace = eco.bus.statistics()["mailboxes"]["horace"]
        assert horace["depth"] == 1000 and horace["waiting"] > 0  # a full mailbox, its publishers in line
        await client.call_tool("mad_resume", {})
        written = await client.call_tool("horace_write_file", {"path": "during.txt", "content": "hi"})
        assert not written.is_error
        results = await asyncio.gather(*calls)
        for result in results:
            assert not result.is_error, result.content[0].text
            replies = json.loads(result.content[0].text)["replies"]
            assert len(replies) == 1 and "success" in replies[0]["tags"]

