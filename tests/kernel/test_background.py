"""A MAD's background work (ctx.spawn): charged to the MAD, reported when it fails, ended with its instance."""
from __future__ import annotations

import asyncio
import time

import pytest

from mads.kernel import MAD, tool
from mads.kernel.errors import MADUnavailable
from mads.kernel.hub import ListSink
from mads.kernel.journal.capture import capture_output


class Worker(MAD):
    """Works in the background when asked."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.tasks: list[asyncio.Task[None]] = []
        self.ticks = 0
        self.ticking = asyncio.Event()
        """Set once the ticker has run a few times."""

    async def on_start(self) -> None:
        self.tasks.append(self.ctx.spawn(self.tick_forever(), "ticker"))

    async def tick_forever(self) -> None:
        while True:
            self.ticks += 1
            if self.ticks > 3:
                self.ticking.set()
            await asyncio.sleep(0)  # one tick per turn of the loop

    @tool
    async def burn(self, ms: int) -> str:
        """Burn ms of CPU in a background task, not in this handler."""

        async def spin() -> None:
            end = time.thread_time() + ms / 1000
            while time.thread_time() < end:
                pass
            self.ctx.log.warning("burnt %d ms", ms)

        self.tasks.append(self.ctx.spawn(spin(), "spin"))
        return "started"

    @tool
    async def fail_later(self) -> str:
        """Start a background task that raises."""

        async def broken() -> None:
            raise KeyError("gone")

        self.tasks.append(self.ctx.spawn(broken(), "broken"))
        return "started"

    @tool
    async def ping(self) -> str:
        """Answer."""
        return "pong"


async def test_background_cpu_and_logs_are_the_mads(make_ecosystem) -> None:
    async with make_ecosystem([Worker], sample_interval=0) as eco:
        logs = ListSink(lambda e: e.kind == "log")
        eco.hub.add_sink(logs)
        with capture_output(eco.hub):
            before = eco.runners["worker"].account.cpu_seconds
            assert await eco.call_tool("worker_burn", {"ms": 120}) == "started"
            spin = eco.runners["worker"].instance.tasks[-1]  # type: ignore[union-attr]
            await spin
        assert eco.runners["worker"].account.cpu_seconds - before >= 0.11
        burnt = [e for e in logs.events if "burnt 120 ms" in str(e.payload)]
        assert burnt and burnt[0].mad == "worker"


async def test_a_failing_background_task_is_a_crash_event_and_the_mad_keeps_serving(make_ecosystem) -> None:
    async with make_ecosystem([Worker], sample_interval=0) as eco:
        await eco.call_tool("worker_fail_later")
        await asyncio.wait_for(eco.runners["worker"].instance.tasks[-1], 10)  # type: ignore[union-attr]  # reported, then done
        (crash,) = eco.events.of("crash")
        assert crash.mad == "worker" and crash.payload["handler"] == "worker.broken"
        assert crash.payload["error"] == "KeyError: 'gone'" and crash.payload["background"] is True
        assert await eco.call_tool("worker_ping") == "pong"
        assert eco.runners["worker"].state.value == "running" and eco.runners["worker"].account.crashes == 1


@pytest.mark.parametrize("how", ["restart", "stop"])
async def test_background_tasks_end_with_their_instance(make_ecosystem, how: str) -> None:
    async with make_ecosystem([Worker], sample_interval=0) as eco:
        runner = eco.runners["worker"]
        old = runner.instance
        ticker = old.tasks[0]  # type: ignore[union-attr]
        await asyncio.wait_for(old.ticking.wait(), 10)  # type: ignore[union-attr]
        if how == "restart":
            await eco.restart_mad("worker")
            assert runner.instance is not old
            assert ticker.cancelled() and runner.background.tasks == set(runner.instance.tasks)  # type: ignore[union-attr]
        else:
            await runner.stop()
            assert ticker.cancelled() and runner.background.tasks == set()
            with pytest.raises(MADUnavailable):
                runner.spawn(asyncio.sleep(0), "late")

