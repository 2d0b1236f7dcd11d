"""Supervision: a crashing or blocking MAD is caught, recorded, restarted or named; its neighbours go on."""
from __future__ import annotations

import asyncio
import time

import pytest

from mads.kernel import MAD, MadError, MADUnavailable, tool
from mads.kernel.supervisor import MADState


class Fragile(MAD):
    """Crashes on demand."""

    @tool
    async def explode(self, why: str = "boom") -> str:
        """Raise an unexpected error."""
        raise RuntimeError(why)

    @tool
    async def hello(self) -> str:
        """Answer."""
        return "still here"


class Blocker(MAD):
    """Blocks the event loop."""

    @tool
    async def hog(self, seconds: float = 0.7) -> str:
        """Hold the loop with a blocking sleep (the bug the watchdog exists for)."""
        time.sleep(seconds)
        return "done"


class Neighbour(MAD):
    """Keeps answering."""

    @tool
    async def ping(self) -> str:
        """Answer pong."""
        return "pong"


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0)


async def test_crashing_mad_does_not_stop_its_neighbours(make_ecosystem) -> None:
    async with make_ecosystem([Fragile, Neighbour]) as eco:
        message, replies = await eco.send("@Fragile explode why=kaboom")
        assert replies[0].tags == ["error"]
        assert "RuntimeError: kaboom" in replies[0].content
        assert await eco.call_tool("neighbour_ping") == "pong"
        message, replies = await eco.send("@Neighbour ping")
        assert replies[0].data["result"] == "pong"
        crash = eco.events.of("crash")[0]
        assert crash.mad == "fragile" and "Traceback" in crash.payload["traceback"]
        assert "RuntimeError: kaboom" in crash.payload["traceback"]
        await wait_for(lambda: eco.events.of("restart"))
        assert eco.runners["fragile"].state == MADState.RUNNING
        assert await eco.call_tool("fragile_hello") == "still here"


async def test_tool_crash_is_an_error_result_for_the_caller(make_ecosystem) -> None:
    async with make_ecosystem([Fragile]) as eco:
        with pytest.raises(MadError, match="fragile_explode crashed: RuntimeError: boom"):
            await eco.call_tool("fragile_explode")


async def test_five_crashes_in_a_minute_make_a_mad_failed(make_ecosystem) -> None:
    async with make_ecosystem([Fragile, Neighbour]) as eco:
        for _ in range(5):
            with pytest.raises(MadError):
                await eco.call_tool("fragile_explode")
        runner = eco.runners["fragile"]
        assert runner.state == MADState.FAILED
        assert "5 crashes in 60 s" in runner.failure
        with pytest.raises(MADUnavailable, match="fragile has FAILED"):
            await eco.call_tool("fragile_hello")
        message, replies = await eco.send("@Fragile hello")
        assert "FAILED" in replies[0].content and replies[0].tags == ["error"]
        assert any(e.payload.get("state") == "failed" for e in eco.events.of("state"))
        assert await eco.call_tool("neighbour_ping") == "pong"
        await runner.restart()
        assert await eco.call_tool("fragile_hello") == "still here"


async def test_watchdog_names_the_mad_that_blocks_the_loop(make_ecosystem) -> None:
    async with make_ecosystem([Blocker, Neighbour], block_threshold=0.2) as eco:
        assert await eco.call_tool("blocker_hog", {"seconds": 0.5}) == "done"
        await wait_for(lambda: eco.events.of("blocked"))
        blocked = eco.events.of("blocked")[0]
        assert blocked.mad == "blocker"
        assert blocked.payload["handler"] == "blocker.hog"
        assert blocked.payload["held_ms"] >= 200
        assert await eco.call_tool("neighbour_ping") == "pong"


async def test_cpu_time_is_charged_to_the_mad_that_spent_it(make_ecosystem) -> None:
    class Spinner(MAD):
        """Burns CPU."""

        @tool
        async def spin(self, ms: int = 100) -> int:
            """Spin for a while, yielding once in the middle."""
            end = time.thread_time() + ms / 2000
            while time.thread_time() < end:
                pass
            await asyncio.sleep(0)
            end = time.thread_time() + ms / 2000
            while time.thread_time() < end:
                pass
            return ms

    async with make_ecosystem([Spinner, Neighbour]) as eco:
        await eco.call_tool("spinner_spin", {"ms": 100})
        await eco.call_tool("neighbour_ping")
        spinner = eco.runners["spinner"].account.cpu_seconds
        neighbour = eco.runners["neighbour"].account.cpu_seconds
        assert spinner >= 0.09
        assert neighbour < spinner / 10
