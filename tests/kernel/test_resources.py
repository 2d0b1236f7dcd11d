"""Resource use per MAD: exact accounting, once-a-second samples, and py-spy attribution."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mads.kernel import MAD, Message, tool
from mads.kernel.resources import attribute, memory, profile


class Spinner(MAD):
    """Burns 200 ms of CPU per message."""

    @tool
    async def spin(self, ms: int = 200) -> int:
        """Spin the CPU."""
        end = time.thread_time() + ms / 1000
        while time.thread_time() < end:
            pass
        return ms


class Hoarder(MAD):
    """Keeps what it is given."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.kept: list[bytes] = []

    @tool
    async def hoard(self, kb: int) -> int:
        """Keep kb kilobytes in many small blocks."""
        self.kept.extend(bytes(1024) for _ in range(kb))
        return len(self.kept)


class Idle(MAD):
    """Does nothing much."""

    @tool
    async def nap(self) -> str:
        """Answer at once."""
        return "zzz"


async def _flood(eco, count: int) -> None:
    for _ in range(count):
        await eco.publish(Message.create("main", "human", "@Spinner spin ms=200"))
        await eco.call_tool("idle_nap")


async def test_a_spinning_mad_gets_the_cpu_by_accounting_and_by_samples(make_ecosystem) -> None:
    async with make_ecosystem([Spinner, Idle], sample_interval=0) as eco:
        await _flood(eco, 3)
        await asyncio.wait_for(_until_idle(eco), 10)
        cpu = {name: r.account.cpu_seconds for name, r in eco.runners.items()}
        assert cpu["spinner"] >= 0.55
        assert cpu["spinner"] / sum(cpu.values()) >= 0.8


async def _until_idle(eco) -> None:
    while any(len(r.mailbox) or not r._idle.is_set() for r in eco.runners.values()):
        await asyncio.sleep(0)


async def test_sample_events_carry_each_mads_figures_and_the_process(make_ecosystem) -> None:
    async with make_ecosystem([Spinner, Idle], sample_interval=3600) as eco:
        await eco.call_tool("spinner_spin", {"ms": 50})
        sample = eco.sampler.sample()
        assert sample["mads"]["spinner"]["cpu_seconds"] >= 0.05
        assert sample["mads"]["spinner"]["tool_calls"] == 1
        assert sample["process"]["rss"] > 0 and sample["process"]["threads"] >= 1
        event = eco.events.of("sample")[-1]
        assert set(event.payload["mads"]) == {"spinner", "idle"}


async def test_mad_profile_attributes_the_samples_to_the_spinning_mad(make_ecosystem) -> None:
    async with make_ecosystem([Spinner, Idle], sample_interval=0) as eco:
        flood = asyncio.create_task(_flood(eco, 12))
        result = await profile(eco, 1.5)
        flood.cancel()
        assert result["samples"] > 0
        spinner = result["mads"]["spinner"]
        assert spinner["share"] >= 0.8, result
        line = next(n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
                    if "while time.thread_time() < end" in text)
        assert spinner["top"][0]["function"].endswith(f"spin (test_resources.py:{line})")
        assert eco.events.of("profile")[0].payload["mads"]["spinner"]["share"] == spinner["share"]


def test_attribution_takes_the_innermost_mad_frame_and_calls_the_rest_kernel() -> None:
    collapsed = "\n".join([
        "run (asyncio/base_events.py:600);_handle (mads/kernel/supervisor.py:210);spin (/x/spinner.py:12) 90",
        "run (asyncio/base_events.py:600);select (selectors.py:468) 10",
    ])
    result = attribute(collapsed, {"/x/spinner.py": "spinner"})
    assert result["samples"] == 100
    assert result["mads"]["spinner"] == {"samples": 90, "share": 0.9,
                                         "top": [{"function": "spin (spinner.py:12)", "samples": 90}]}
    assert result["mads"]["kernel"]["samples"] == 10


async def test_mad_memory_gives_the_bytes_a_mad_keeps_to_that_mad_with_the_line_that_allocated_them(
        make_ecosystem) -> None:
    async with make_ecosystem([Hoarder, Idle], sample_interval=0) as eco:
        async def feed() -> None:
            for _ in range(20):
                await eco.call_tool("hoarder_hoard", {"kb": 256})
                await eco.call_tool("idle_nap")

        reading = asyncio.create_task(memory(eco, 1.0))
        await asyncio.sleep(0)  # tracing starts
        await feed()
        result = await reading
        hoarder = result["mads"]["hoarder"]
        assert result["since"] == "window" and result["seconds"] == 1.0
        assert hoarder["bytes"] >= 5 * 1024 * 1024 * 0.9  # the 5 MB kept (at least what was made while tracing)
        assert hoarder["share"] >= 0.8, {m: f["share"] for m, f in result["mads"].items()}
        line = next(n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "kept.extend(" in text)
        assert hoarder["top"][0]["where"] == f"test_resources.py:{line}"
        assert "idle" not in result["mads"] or result["mads"]["idle"]["bytes"] < hoarder["bytes"] / 50
        recorded = eco.events.of("memory")[0].payload
        assert recorded["mads"]["hoarder"]["bytes"] == hoarder["bytes"]


async def test_mad_memory_refuses_a_silly_duration_in_one_line(make_ecosystem) -> None:
    import pytest

    from mads.kernel.errors import MadError

    async with make_ecosystem([Idle], sample_interval=0) as eco:
        with pytest.raises(MadError, match="seconds must be between 0 and 600"):
            await memory(eco, 0)
