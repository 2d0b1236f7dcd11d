"""The in-memory bus: delivery by mention and membership, order per conversation, backpressure."""
from __future__ import annotations

import asyncio

import pytest

from mads.kernel import InMemoryBus, Mailbox, MailboxFull, Message, UsageError
from mads.kernel.bus import Delivery, Observation


async def mailboxes(bus: InMemoryBus, *names: str, size: int = 100) -> dict[str, Mailbox]:
    boxes = {name: Mailbox(size) for name in names}
    for name, box in boxes.items():
        await bus.register(name, box)
    return boxes


def drain(box: Mailbox) -> list[Delivery]:
    items = []
    while not box.empty():
        items.append(box.get_nowait())
    return items


async def test_a_mention_delivers_only_to_the_mentioned_and_joins_them() -> None:
    bus = InMemoryBus()
    boxes = await mailboxes(bus, "dewey", "horace")
    await bus.register("human", None)
    conv = await bus.create_conversation("ops", ["human", "horace"])
    recipients = await bus.publish(Message.create(conv.id, "human", "@Dewey search query=x"))
    assert recipients == ["dewey"]
    assert [d.addressed for d in drain(boxes["dewey"])] == [True]
    assert drain(boxes["horace"]) == []
    assert conv.participants == ["human", "horace", "dewey"]


async def test_without_mentions_every_member_but_the_sender_receives() -> None:
    bus = InMemoryBus()
    boxes = await mailboxes(bus, "dewey", "horace", "rogers")
    conv = await bus.create_conversation("ops", ["dewey", "horace"])
    await bus.publish(Message.create(conv.id, "dewey", "status update"))
    assert [d.addressed for d in drain(boxes["horace"])] == [False]
    assert drain(boxes["dewey"]) == [] and drain(boxes["rogers"]) == []


async def test_observers_see_every_message_with_the_conversation() -> None:
    bus = InMemoryBus()
    observer = Mailbox()
    await bus.register("rogers", observer, observer=True)
    await mailboxes(bus, "dewey")
    conv = await bus.create_conversation("ops", ["human"])
    await bus.publish(Message.create(conv.id, "human", "@Dewey hi"))
    seen = drain(observer)
    assert isinstance(seen[0], Observation) and seen[0].conversation["name"] == "ops"


async def test_order_is_kept_per_conversation() -> None:
    bus = InMemoryBus()
    boxes = await mailboxes(bus, "dewey", size=10_000)
    conv = await bus.create_conversation("ops", ["dewey"])
    sent = [Message.create(conv.id, "human", f"message {i}") for i in range(500)]
    await asyncio.gather(*(bus.publish(m) for m in sent))
    assert [d.message.id for d in drain(boxes["dewey"])] == [m.id for m in sent]


async def test_a_full_mailbox_makes_the_publisher_wait() -> None:
    bus = InMemoryBus()
    box = (await mailboxes(bus, "slow", size=2))["slow"]
    conv = await bus.create_conversation("ops", ["slow"])
    for i in range(2):
        await bus.publish(Message.create(conv.id, "human", f"m{i}"))
    third = asyncio.create_task(bus.publish(Message.create(conv.id, "human", "m2")))
    await asyncio.sleep(0)
    assert not third.done() and len(box) == 2
    box.get_nowait()
    await third
    assert box.statistics()["waits"] == 1 and len(box) == 2
    with pytest.raises(MailboxFull):
        box.put_nowait("x")


async def test_unknown_conversation_is_a_usage_error() -> None:
    bus = InMemoryBus()
    with pytest.raises(UsageError, match="unknown conversation 'nope'"):
        await bus.publish(Message.create("nope", "human", "hi"))


async def test_statistics_count_traffic() -> None:
    bus = InMemoryBus()
    await mailboxes(bus, "a", "b")
    conv = await bus.create_conversation("c", ["a", "b"])
    await bus.publish(Message.create(conv.id, "a", "hi"))
    stats = bus.statistics()
    assert stats["published"] == 1 and stats["delivered"] == 1
    assert stats["mailboxes"]["b"]["depth"] == 1
