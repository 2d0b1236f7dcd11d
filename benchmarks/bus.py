"""Bus figures: messages per second through MAD mailboxes, and the p99 of one message's delivery.

Both run real MADs in a real Ecosystem (no recording yet) whose `on_message` only counts,
and compare with the same hand-off through raw `asyncio.Queue`s bounded like a mailbox.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mads.kernel import HUMAN, MAD, Config, Ecosystem, Message

from .harness import Sample, figure, percentile

MAILBOX = 1000
"""The bound of a MAD mailbox (Config.mailbox_size), used for the baseline queues too."""

_perf = time.perf_counter


class Tally:
    """What the sinks of one round share: deliveries counted, latencies seen, and a done signal."""

    def __init__(self, expected: int, timing: bool = False) -> None:
        self.count = 0
        self.expected = expected
        self.latencies: list[float] | None = [] if timing else None
        self.done = asyncio.Event()


_tally = Tally(0)


class Sink(MAD):
    """Counts the messages delivered to it and does nothing else."""

    async def on_message(self, message: Message, addressed: bool) -> None:
        now = _perf()
        tally = _tally
        if tally.latencies is not None:
            tally.latencies.append(now - message.data)
            tally.done.set()
            return
        tally.count += 1
        if tally.count >= tally.expected:
            tally.done.set()


class SinkA(Sink):
    """A sink MAD."""


class SinkB(Sink):
    """A sink MAD."""


class SinkC(Sink):
    """A sink MAD."""


SINKS: list[type[MAD]] = [SinkA, SinkB, SinkC]


@asynccontextmanager
async def ecosystem(mads: list[type[MAD]]) -> AsyncIterator[tuple[Ecosystem, str]]:
    """A started ecosystem of these MADs in a temporary home, and a conversation of them all with the human."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as home:
        eco = Ecosystem(Config(home=Path(home), include_package=False, environ={}), mads=mads)
        async with eco:
            conv = await eco.bus.create_conversation("bench", [HUMAN, *(m.name for m in mads)])
            yield eco, conv.id


async def queue_throughput(n: int, consumers: int) -> float:
    """Items/s through raw bounded queues: one producer puts each of n items into every queue, one consumer each."""
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(MAILBOX) for _ in range(consumers)]
    tally = Tally(n * consumers)

    async def consume(queue: asyncio.Queue[Any]) -> None:
        while True:
            await queue.get()
            tally.count += 1
            if tally.count >= tally.expected:
                tally.done.set()

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    items = [object() for _ in range(n)]
    started = _perf()
    for item in items:
        for queue in queues:
            await queue.put(item)
    await tally.done.wait()
    elapsed = _perf() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return n * consumers / elapsed


@figure("bus_throughput", unit="messages/s", target="ratio >= 0.1", goal="value >= 100000",
        n=20_000, quick_n=5_000)
async def bus_throughput(n: int) -> Sample:
    """Deliveries/s of n messages published to a conversation of three sink MADs (each gets every message).

    Baseline: the same fan-out through raw asyncio.Queues (bound 1000), one producer, one consumer per queue.
    """
    baseline = await queue_throughput(n, len(SINKS))
    return Sample(n * len(SINKS) / await _delivery_seconds(n, 0), baseline)


async def queue_latency_p99(n: int) -> float:
    """p99 in ms of handing one item at a time through a raw bounded queue to a consumer task."""
    queue: asyncio.Queue[float] = asyncio.Queue(MAILBOX)
    latencies: list[float] = []
    arrived = asyncio.Event()

    async def consume() -> None:
        while True:
            stamp = await queue.get()
            latencies.append(_perf() - stamp)
            arrived.set()

    task = asyncio.create_task(consume())
    for _ in range(n):
        arrived.clear()
        await queue.put(_perf())
        await arrived.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return percentile(latencies, 99) * 1000


@figure("bus_delivery_p99", unit="ms", target="value < 1", goal="value < 1", n=3_000, quick_n=1_000)
async def bus_delivery_p99(n: int) -> Sample:
    """p99 ms from `eco.publish(msg)` to the mentioned MAD's handler starting, one message at a time.

    Baseline: the same one-at-a-time hand-off through a raw asyncio.Queue to a consumer task.
    """
    global _tally
    baseline = await queue_latency_p99(n)
    async with ecosystem(SINKS) as (eco, conv):
        target = SINKS[0].name
        messages = [Message.create(conv, HUMAN, f"@{target} hello") for _ in range(n)]
        _tally = tally = Tally(1, timing=True)
        for message in messages:
            tally.done.clear()
            message.data = _perf()
            await eco.publish(message)
            await tally.done.wait()
    assert tally.latencies is not None
    if len(tally.latencies) != n:
        raise RuntimeError(f"{len(tally.latencies)} deliveries of {n}")
    return Sample(percentile(tally.latencies, 99) * 1000, baseline)


async def _delivery_seconds(n: int, breakpoints: int) -> float:
    """Seconds to publish n messages to the three sinks and see every delivery, with this many breakpoints set."""
    global _tally
    async with ecosystem(SINKS) as (eco, conv):
        for number in range(breakpoints):  # none matches: each looks at another MAD, tag, sender or text
            eco.breaks.add(**[{"mad": f"nobody{number}"}, {"tag": f"never{number}"}, {"sender": f"ghost{number}"},
                              {"pattern": f"^zz{number}$"}][number % 4])
        messages = [Message.create(conv, HUMAN, "hello") for _ in range(n)]
        _tally = tally = Tally(n * len(SINKS))
        started = _perf()
        for message in messages:
            await eco.publish(message)
        await tally.done.wait()
        elapsed = _perf() - started
    if tally.count != n * len(SINKS):
        raise RuntimeError(f"{tally.count} deliveries of {n * len(SINKS)}")
    return elapsed


@figure("break_overhead", unit="s", target="ratio <= 1.2", n=20_000, quick_n=5_000)
async def break_overhead(n: int) -> Sample:
    """Seconds to deliver n messages to three sinks with 10 breakpoints set that none matches (every message
    is checked against each). Baseline: the same with no breakpoint; ratio = the slowdown."""
    baseline = await _delivery_seconds(n, 0)
    return Sample(await _delivery_seconds(n, 10), baseline)
