"""The core's end of an isolated MAD's process (a port, as Erlang calls it): spawn, calls, clock, death.

Every call to the process runs against the MAD's `call_timeout`; the clock stops while the
process waits on the core for that call (an LLM answer, another MAD's tool), so only the
MAD's own time counts. When the clock runs out, or the process dies, every caller still
waiting gets a ProcessDied naming the cause, and the process is gone.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..errors import ProcessDied
from . import Isolation
from .channel import Channel, ChannelClosed, Handler, Notice
from .sandbox import EXIT_MEMORY, bwrap_command, environment

log = logging.getLogger("mads.kernel")

CHILD_MODULE = "mads.kernel.isolation.child"
STOP_SECONDS = 5.0
"""How long a stopping process may take to finish its on_stop before it is killed."""


@dataclass
class Placement:
    """Where and how one isolated MAD runs: its limits, the sandbox, and the folders it may write."""

    isolation: Isolation
    sandbox: str
    """`bwrap` or `rlimits`."""
    home: Path
    """MAD_HOME; the process sees only `writable` of it."""
    writable: list[Path] = field(default_factory=list)
    """Its state folder first, then the MAD_HOME folders its class declares."""


def child_command(name: str, placement: Placement, fd: int) -> list[str]:
    command = [sys.executable, "-s", "-P", "-m", CHILD_MODULE, "--fd", str(fd), "--mad", name,
               "--home", str(placement.home), "--limits", json.dumps(placement.isolation.to_dict())]
    if placement.sandbox == "bwrap":
        return bwrap_command(command, network=placement.isolation.network, writable=placement.writable,
                             workdir=placement.writable[0])
    return command


def death_cause(returncode: int, isolation: Isolation, bwrap: bool) -> str:
    """What an exit status means for a MAD's process, in the words a user reads."""
    if returncode == EXIT_MEMORY:
        return f"memory limit {isolation.memory_mb} MB"
    number = -returncode if returncode < 0 else returncode - 128 if bwrap and 128 < returncode < 160 else 0
    if number:
        if number == signal.SIGXCPU:
            return f"CPU limit {isolation.cpu_seconds:g} s"
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {number} ({name})"
    return f"exited with code {returncode}"


class Deadline:
    """A call's clock: runs out after `seconds` of the process's own time; paused while it waits on the core."""

    def __init__(self, seconds: float, expire: Callable[[], None]) -> None:
        self.remaining = seconds
        self._expire = expire
        self._waits = 0
        self._done = False
        self._started = time.monotonic()
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(seconds, expire)

    def pause(self) -> None:
        self._waits += 1
        if self._waits == 1 and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self.remaining -= time.monotonic() - self._started

    def resume(self) -> None:
        self._waits -= 1
        if self._waits == 0 and not self._done:
            self._started = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(max(self.remaining, 0.0), self._expire)

    def cancel(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Port:
    """One process running one MAD, and the channel to it."""

    def __init__(self, name: str, placement: Placement, serve: Handler, notice: Notice,
                 on_output: Callable[[str, str], None], on_death: Callable[[str], Awaitable[None]]) -> None:
        self.name = name
        self.placement = placement
        self._serve = serve
        self._notice = notice
        self._on_output = on_output
        self._on_death = on_death
        self.process: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.pid: int | None = None
        """The pid of the MAD's Python process (inside bubblewrap, bwrap's grandchild)."""
        self.cause: str | None = None
        """Why the process ended, once it has."""
        self._deadlines: dict[int, Deadline] = {}
        self._progress: dict[int, Callable[[float, float | None, str | None], Awaitable[None]]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._reports: set[asyncio.Task[Any]] = set()
        self._exited = asyncio.Event()
        self.closing = False
        self.started = 0.0

    # life ----------------------------------------------------------------------
    async def open(self) -> None:
        """Start the process and its channel (the MAD is loaded by the first request)."""
        self.started = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *child_command(self.name, self.placement, theirs.fileno()), pass_fds=[theirs.fileno()],
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=environment(self.placement.writable[0], self.placement.sandbox),
                cwd=self.placement.writable[0], start_new_session=True)
        finally:
            theirs.close()
        self.channel = await Channel.over(ours, self._served, self._noticed)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.channel.run(), name=f"mad:{self.name}:channel"),
                       loop.create_task(self._read(self.process.stdout, "stdout"), name=f"mad:{self.name}:stdout"),
                       loop.create_task(self._read(self.process.stderr, "stderr"), name=f"mad:{self.name}:stderr"),
                       loop.create_task(self._wait(), name=f"mad:{self.name}:wait")]

    def find_pid(self) -> int | None:
        """The MAD's own Python process: the spawned one, or under bubblewrap the child that runs it."""
        if self.process is None:
            return None
        if self.placement.sandbox != "bwrap":
            return self.process.pid
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    command = proc.cmdline()
                    if CHILD_MODULE in command and os.path.basename(command[0]) != "bwrap":
                        return proc.pid
        return None

    async def _read(self, stream: asyncio.StreamReader | None, name: str) -> None:
        """The process's stdout and stderr (prints, faulthandler's tracebacks) become its log lines."""
        if stream is None:
            return
        while line := await stream.readline():
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                self._on_output(name, text)

    async def _wait(self) -> None:
        assert self.process is not None
        returncode = await self.process.wait()
        if self.cause is None:
            self.cause = death_cause(returncode, self.placement.isolation, self.placement.sandbox == "bwrap")
        self._exited.set()
        waiting = bool(self._deadlines)  # the callers waiting learn the cause and their MAD's runner acts on it
        if self.channel is not None:
            self.channel.close(self.cause)
        for deadline in self._deadlines.values():
            deadline.cancel()
        if not self.closing:
            log.info("%s: its process ended: %s", self.name, self.cause)
            if not waiting:  # nobody was waiting: tell the runner, from a task of its own (it will close this port)
                task = asyncio.ensure_future(self._on_death(self.cause))
                self._reports.add(task)
                task.add_done_callback(self._reports.discard)

    def kill(self, cause: str) -> None:
        """End the process now (SIGKILL); callers still waiting get the cause."""
        if self.cause is None:
            self.cause = cause
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def close(self) -> None:
        """Ask the MAD to stop (its on_stop runs), then make sure the process is gone."""
        self.closing = True
        if self.channel is not None and self.channel.closed is None and self.process is not None \
                and self.process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.channel.request("stop", {}), STOP_SECONDS)
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 2.0)
        self.kill(self.cause or "stopped")
        if self.process is not None:
            await self.process.wait()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and not self._exited.is_set()

    # calls -----------------------------------------------------------------------
    async def request(self, method: str, params: dict[str, Any], *, timeout: float | None = None,
                      progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None) -> Any:
        """One call into the process; ProcessDied when it dies or overruns meanwhile."""
        channel = self.channel
        if channel is None or not self.alive:
            raise ProcessDied(self.cause or f"{self.name}'s process is not running")
        seconds = self.placement.isolation.call_timeout if timeout is None else timeout
        request_id, future = channel.start(method, params)

        def expire() -> None:
            self.kill(f"call timeout {seconds:g} s")

        deadline = self._deadlines[request_id] = Deadline(seconds, expire)
        if progress is not None:
            self._progress[request_id] = progress
        try:
            return await future
        except ChannelClosed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 5.0)
            raise ProcessDied(self.cause or str(channel.closed)) from None
        finally:
            deadline.cancel()
            self._deadlines.pop(request_id, None)
            self._progress.pop(request_id, None)

    def _noticed(self, method: str, params: dict[str, Any]) -> None:
        if method != "progress":
            self._notice(method, params)
            return
        report = self._progress.get(params.get("request", -1))
        if report is not None:
            task = asyncio.ensure_future(report(params.get("done", 0), params.get("total"), params.get("message")))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def _served(self, method: str, params: dict[str, Any], request_id: int, parent: int | None) -> Any:
        """A call from the process to the core: the clock of the call it serves stops meanwhile."""
        deadline = self._deadlines.get(parent) if parent is not None else None
        if deadline is None:
            return await self._serve(method, params, request_id, parent)
        deadline.pause()
        try:
            return await self._serve(method, params, request_id, parent)
        finally:
            deadline.resume()
