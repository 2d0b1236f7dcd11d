"""Recording figure: what the session journal adds to each bus message, against the same run unrecorded.

Both sides run the bus_throughput workload (three sink MADs, pre-built messages published
through `eco.publish`); the recorded side attaches a journal with `record_session` and its
time includes the writer's flush, after which every message event must be in the file.
"""
from __future__ import annotations

import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

from mads.kernel import HUMAN, Config, Ecosystem, Message
from mads.kernel.journal import record_session

from . import bus
from .bus import SINKS, Tally, queue_throughput
from .harness import Sample, figure

_perf = time.perf_counter


async def _publish_all(eco: Ecosystem, messages: list[Message]) -> Tally:
    """Publish the pre-built messages; returns once every sink has them all."""
    bus._tally = tally = Tally(len(messages) * len(SINKS))
    for message in messages:
        await eco.publish(message)
    await tally.done.wait()
    return tally


async def seconds_per_message(n: int, *, record: bool) -> float:
    """Seconds per message of publishing n messages to three sinks, recorded (flush included) or not."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as home:
        eco = Ecosystem(Config(home=Path(home), include_package=False, environ={}, sample_interval=0),
                        mads=SINKS)
        eco.load()
        sessions = Path(home, "sessions") if record else None
        with record_session(eco, sessions, argv=["python", "-m", "benchmarks"], command="bench") as recording:
            async with eco:
                conv = (await eco.bus.create_conversation("bench", [HUMAN, *(m.name for m in SINKS)])).id
                if recording is not None:
                    recording.writer.flush()  # the start-up events are not part of the figure
                messages = [Message.create(conv, HUMAN, "hello") for _ in range(n)]
                started = _perf()
                tally = await _publish_all(eco, messages)
                if recording is not None:
                    recording.writer.flush(60.0)  # every message event committed to the file
                elapsed = _perf() - started
        if tally.count != n * len(SINKS):
            raise RuntimeError(f"{tally.count} deliveries of {n * len(SINKS)}")
        if recording is not None:
            if recording.writer.error:
                raise RuntimeError(f"the journal writer failed: {recording.writer.error}")
            with closing(sqlite3.connect(recording.path)) as conn:
                recorded = conn.execute(
                    "SELECT count(*) FROM events WHERE kind = 'message' AND conversation = ?", (conv,)).fetchone()[0]
            if recorded != n:
                raise RuntimeError(f"the journal holds {recorded} message events of {n}")
    return elapsed / n


@figure("recording_overhead", unit="µs/message", target="ratio <= 1.3", n=20_000, quick_n=5_000)
async def recording_overhead(n: int) -> Sample:
    """µs per message published to three sink MADs with the session journal recording (its flush included).

    Baseline: the same workload in the same run with recording off.
    """
    baseline = await seconds_per_message(n, record=False)
    value = await seconds_per_message(n, record=True)
    return Sample(value * 1e6, baseline * 1e6)


@figure("bus_throughput_recorded", unit="messages/s", goal="value >= 100000", n=20_000, quick_n=5_000)
async def bus_throughput_recorded(n: int) -> Sample:
    """Deliveries/s to three sink MADs with the session journal recording, as a user runs it (flush included).

    The architecture's "bus with recording on" figure; baseline: the same fan-out through raw
    asyncio.Queues, as for bus_throughput.
    """
    baseline = await queue_throughput(n, len(SINKS))
    seconds = await seconds_per_message(n, record=True)
    return Sample(len(SINKS) / seconds, baseline)
