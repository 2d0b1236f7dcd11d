"""Distributed figures: messages through Redis between two processes, their latency, and a replica taking over.

Each figure starts its own redis-server on a free loopback port (persistence off) and real
`mad run --bus` processes; the baselines are bare redis-py loops between the same two processes.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from mads.kernel import HUMAN, Config, Ecosystem, Message

from .harness import Sample, figure, percentile

_perf = time.perf_counter
ROOT = Path(__file__).resolve().parents[1]
CLAIM_IDLE = 1.0
CONCURRENCY = 64
"""Publishes in flight at once from the benchmark's process."""

SINK = '''
import asyncio
import os
import time
from mads.kernel import MAD, tool


class Sink(MAD):
    """Counts what it is sent and how long each took to reach it."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.count = 0
        self.latencies = []

    async def on_message(self, message, addressed):
        self.count += 1
        if isinstance(message.data, dict) and "sent" in message.data:
            self.latencies.append(time.monotonic() - message.data["sent"])

    @tool
    async def figures(self) -> dict:
        """How many messages came, and their latencies (seconds); forgets them."""
        found = {"count": self.count, "latencies": self.latencies}
        self.count, self.latencies = 0, []
        return found

    @tool
    async def answer(self, stall_pid: int = 0) -> int:
        """Answer with this process's pid; the process `stall_pid` never answers."""
        if os.getpid() == stall_pid:
            await asyncio.sleep(3600)
        return os.getpid()
'''

BARE_CONSUMER = '''
import sys, redis
r = redis.Redis.from_url(sys.argv[1], decode_responses=True)
n, stream = int(sys.argv[2]), sys.argv[3]
try:
    r.xgroup_create(stream, "g", id="0", mkstream=True)
except redis.ResponseError:
    pass
print("ready", flush=True)
seen = 0
while seen < n:
    found = r.xreadgroup("g", "c", {stream: ">"}, count=100, block=1000)
    for _, entries in found or []:
        ids = [entry_id for entry_id, _ in entries]
        r.xack(stream, "g", *ids)
        seen += len(ids)
r.xadd(stream + ":done", {"n": seen})
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of this run's own; its URL."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mad-bench-redis-") as folder:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                 text=True).stdout.strip() != "PONG":
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait()


@contextlib.contextmanager
def node(url: str, mads: str, home: Path, folder: Path) -> Iterator[subprocess.Popen[str]]:
    """A `mad run --bus` process hosting these MADs, ready."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAD_")}, "PYTHONPATH": str(ROOT),
           "MAD_MASTER_KEY": "ab" * 32}
    process = subprocess.Popen([sys.executable, "-m", "madtui", "run", "--bus", url, "--mads", mads, "--home",
                                str(home), "--mad-path", str(folder), "--no-watch", "--no-record", "--claim-idle",
                                str(CLAIM_IDLE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"mad run did not start: {line!r}")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait()


@contextlib.asynccontextmanager
async def setup() -> AsyncIterator[tuple[str, Path, subprocess.Popen[str], Ecosystem, contextlib.ExitStack]]:
    """Redis, a process hosting the sink MAD, and an attached ecosystem in this process."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-dist-") as folder, redis_server() as url, \
            contextlib.ExitStack() as stack:
        mads = Path(folder, "mads")
        mads.mkdir()
        (mads / "sink.py").write_text(SINK)
        host = stack.enter_context(node(url, "sink", Path(folder, "home"), mads))
        config = Config(home=Path(folder, "bench"), bus=url, only=[], mad_path=[mads], include_package=False,
                        environ={}, sample_interval=0, call_timeout=120, claim_idle=CLAIM_IDLE)
        async with Ecosystem(config) as eco:
            await eco.bus.register(HUMAN, None)
            yield url, mads, host, eco, stack


async def publish_all(eco: Ecosystem, messages: list[Message]) -> None:
    """Publish the messages, CONCURRENCY at a time."""
    for start in range(0, len(messages), CONCURRENCY):
        await asyncio.gather(*(eco.publish(m) for m in messages[start:start + CONCURRENCY]))


async def bare_throughput(url: str, n: int) -> float:
    """Entries/s of a bare loop: this process XADDs (pipelined), another XREADGROUPs and XACKs in batches."""
    import redis.asyncio as aioredis

    stream = f"bare:{os.getpid()}:{time.monotonic_ns()}"
    consumer = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_CONSUMER, url, str(n), stream,
                                                    stdout=asyncio.subprocess.PIPE)
    assert consumer.stdout is not None
    await consumer.stdout.readline()
    client = aioredis.Redis.from_url(url, decode_responses=True)
    started = _perf()
    for start in range(0, n, 100):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 100)):
                pipe.xadd(stream, {"n": i})
            await pipe.execute()
    await client.xread({stream + ":done": "0"}, block=60_000)
    elapsed = _perf() - started
    await consumer.wait()
    await client.aclose()
    return n / elapsed


async def conversation(eco: Ecosystem) -> str:
    return (await eco.bus.create_conversation("bench", [HUMAN, "sink"])).id


@figure("redis_bus_throughput", unit="messages/s", target="ratio >= 0.5", n=5_000, quick_n=2_000)
async def redis_bus_throughput(n: int) -> Sample:
    """Messages/s from this process to a MAD in another, through Redis (publish script, inbox, handler, ack).

    Baseline: a bare redis-py XADD -> XREADGROUP -> XACK loop between two processes on the same Redis.
    """
    async with setup() as (url, _, _, eco, _):
        baseline = await bare_throughput(url, n)
        conv = await conversation(eco)
        messages = [Message.create(conv, HUMAN, "@Sink tick") for _ in range(n)]
        started = _perf()
        await publish_all(eco, messages)
        figures = await eco.call_tool("sink_figures", {})  # answered after every message before it
        elapsed = _perf() - started
    if figures["count"] != n:
        raise RuntimeError(f"{figures['count']} messages of {n} reached the sink")
    return Sample(n / elapsed, baseline)


@figure("redis_bus_p99", unit="ms", target="value < 5", n=2_000, quick_n=1_000)
async def redis_bus_p99(n: int) -> Sample:
    """p99 ms from publishing in this process to the handler starting in the other, at half the throughput.

    Baseline: the p50 of the same messages.
    """
    async with setup() as (_, _, _, eco, _):
        conv = await conversation(eco)
        warm = [Message.create(conv, HUMAN, "@Sink tick") for _ in range(500)]
        started = _perf()
        await publish_all(eco, warm)
        await eco.call_tool("sink_figures", {})
        rate = len(warm) / (_perf() - started) / 2
        begin = _perf()
        for i in range(n):
            due = begin + i / rate
            if due > _perf():
                await asyncio.sleep(due - _perf())
            message = Message.create(conv, HUMAN, "@Sink tick", data={"sent": time.monotonic()})
            await eco.publish(message)
        figures = await eco.call_tool("sink_figures", {})
    latencies = figures["latencies"]
    if len(latencies) != n:
        raise RuntimeError(f"{len(latencies)} latencies of {n}")
    return Sample(percentile(latencies, 99) * 1000, percentile(latencies, 50) * 1000)


@figure("node_failover", unit="s", target="value <= 2", n=1, quick_n=1)
async def node_failover(n: int) -> Sample:
    """Seconds from kill -9 of the process holding a call to a replica's answer (--claim-idle 1 s).

    Baseline: the claim idle time itself (the least a takeover can take); the target is claim idle + 1 s.
    """
    times = []
    for _ in range(n):
        async with setup() as (url, mads, first, eco, stack):
            call = asyncio.ensure_future(eco.call_tool("sink_answer", {"stall_pid": first.pid}))
            await asyncio.sleep(0.3)  # the only host has taken the call and stalls on it
            replica = stack.enter_context(node(url, "sink", mads.parent / "home", mads))
            first.send_signal(signal.SIGKILL)
            killed = _perf()
            answered = await call
            times.append(_perf() - killed)
            if answered != replica.pid:
                raise RuntimeError(f"answered by {answered}, not the replica {replica.pid}")
    return Sample(percentile(times, 50), CLAIM_IDLE)
