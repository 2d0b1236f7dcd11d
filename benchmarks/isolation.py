"""Isolation figures: what the wall costs a call and a start, and what it saves a neighbour.

Each round runs a real ecosystem holding the same MAD twice, once in the core and once isolated
(its own process, inside bubblewrap when installed), written as a MAD_PATH module.
"""
from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mads.kernel import Config, Ecosystem

from .harness import Sample, figure, percentile

_perf = time.perf_counter
NEIGHBOUR_CALLS_PER_SECOND = 200
"""The pace of the core calls measured beside a spinner: a steady load, not a flood."""

MODULE = '''
import time
from mads.kernel import MAD, Isolation, tool


class CoreEcho(MAD):
    """Echoes, in the core."""

    @tool
    async def ping(self, text: str) -> str:
        """Echo."""
        return text


class IsoEcho(CoreEcho):
    """Echoes, from its own process."""

    isolation = Isolation(call_timeout=120)


class CoreSpinner(MAD):
    """Spins, in the core."""

    @tool
    def spin(self, seconds: float) -> int:
        """Keep a CPU busy (a sync tool: a worker thread in the core, holding the GIL)."""
        end, turns = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            turns += 1
        return turns


class IsoSpinner(CoreSpinner):
    """Spins, in its own process."""

    isolation = Isolation(call_timeout=120)
'''


@asynccontextmanager
async def ecosystem() -> AsyncIterator[Ecosystem]:
    """A started ecosystem of the echo MAD in the core and isolated, in a temporary home."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-iso-") as folder:
        mads = Path(folder, "mads")
        mads.mkdir()
        (mads / "echo.py").write_text(MODULE, encoding="utf-8")
        config = Config(home=Path(folder, "home"), mad_path=[mads], include_package=False, environ={},
                        sample_interval=0, sandbox=os.environ.get("MAD_SANDBOX") or "auto")
        async with Ecosystem(config) as eco:
            yield eco


async def call_times(eco: Ecosystem, tool: str, n: int) -> list[float]:
    """Seconds of each of n calls of the tool, one after another."""
    times = []
    for _ in range(n):
        started = _perf()
        await eco.call_tool(tool, {"text": "x"})
        times.append(_perf() - started)
    return times


async def paced_call_times(eco: Ecosystem, tool: str, n: int, rate: float) -> list[float]:
    """Seconds from each call's due time (`rate` a second) to its result: the wait to be run counts too,
    as a client of a busy process sees it."""
    times = []
    start = _perf()
    for i in range(n):
        due = start + i / rate
        if due > _perf():
            await asyncio.sleep(due - _perf())
        await eco.call_tool(tool, {"text": "x"})
        times.append(_perf() - due)
    return times


@figure("isolated_call_roundtrip", unit="ms", target="value < 1", goal="value < 1", n=3_000, quick_n=1_000)
async def isolated_call_roundtrip(n: int) -> Sample:
    """p50 ms of a trivial tool call to an isolated MAD (its own process, through the channel).

    Baseline: the same call to the same MAD in the core.
    """
    async with ecosystem() as eco:
        await call_times(eco, "isoecho_ping", 50)  # warm both paths
        await call_times(eco, "coreecho_ping", 50)
        isolated = await call_times(eco, "isoecho_ping", n)
        core = await call_times(eco, "coreecho_ping", n)
    return Sample(percentile(isolated, 50) * 1000, percentile(core, 50) * 1000)


async def interpreter_start() -> float:
    """Seconds for a bare interpreter to start and exit."""
    started = _perf()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    return _perf() - started


@figure("isolated_start", unit="s", target="value < 1", goal="value < 1", n=10, quick_n=5)
async def isolated_start(n: int) -> Sample:
    """Median seconds from spawning an isolated MAD's process to the MAD ready (module loaded, on_start run).

    Baseline: a bare interpreter starting and exiting.
    """
    starts, bare = [], []
    async with ecosystem() as eco:
        runner = eco.runners["isoecho"]
        for _ in range(n):
            await runner.restart()
            starts.append(runner.instance.ready_seconds)  # type: ignore[union-attr]
            bare.append(await interpreter_start())
    return Sample(percentile(starts, 50), percentile(bare, 50))


async def neighbour_p99(n: int, spinner: str | None) -> float:
    """p99 ms of n core calls paced at NEIGHBOUR_CALLS_PER_SECOND while the spinner tool (if any) spins."""
    async with ecosystem() as eco:
        await call_times(eco, "coreecho_ping", 50)
        spinning = None
        if spinner is not None:  # it spins a little longer than the measure lasts, then ends by itself
            seconds = n / NEIGHBOUR_CALLS_PER_SECOND * 1.5 + 1.0
            spinning = asyncio.ensure_future(eco.call_tool(spinner, {"seconds": seconds}))
            await asyncio.sleep(0.2)  # the spinner has the CPU before the measure starts
        times = await paced_call_times(eco, "coreecho_ping", n, NEIGHBOUR_CALLS_PER_SECOND)
        if spinning is not None:
            await spinning
    return percentile(times, 99) * 1000


@figure("isolation_neighbour_p99", unit="ms", target="ratio <= 1.5", goal="ratio <= 1.5", n=2_000, quick_n=600)
async def isolation_neighbour_p99(n: int) -> Sample:
    """p99 ms of calls to a core MAD while an isolated MAD spins a sync loop in its own process.

    Baseline: the same calls while nothing spins. (`isolation_neighbour_p99_in_process` is the same
    figure with the spinner in the core.)
    """
    return Sample(await neighbour_p99(n, "isospinner_spin"), await neighbour_p99(n, None))


@figure("isolation_neighbour_p99_in_process", unit="ms", n=2_000, quick_n=600)
async def isolation_neighbour_p99_in_process(n: int) -> Sample:
    """The same p99 with the spinner in the core (a sync tool in a worker thread): what isolation avoids.

    Baseline: the same calls while nothing spins.
    """
    return Sample(await neighbour_p99(n, "corespinner_spin"), await neighbour_p99(n, None))
