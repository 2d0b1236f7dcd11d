"""The host: runs the ecosystem as a child (`mad mcp --journal PATH`) and talks to it over MCP stdio.

If the child dies, the host restarts it with backoff and the session goes on in the same
journal; after repeated failures it stops and keeps the last error. It knows nothing of Textual.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psutil
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

if TYPE_CHECKING:
    from mcp.shared.dispatcher import ProgressFnT

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class HostOptions:
    """What the child is started with; each maps to a `mad mcp` option."""

    home: Path = Path(".mad")
    sessions: Path = Path("sessions")
    mad_path: list[Path] = field(default_factory=list)
    provider: str = "offline"
    isolate: list[str] = field(default_factory=list)
    bus: str | None = None
    """A distributed ecosystem to attach to (the child records every process's events)."""
    mads: list[str] = field(default_factory=list)
    ecosystem: str = "mad"
    journal: Path | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    max_failures: int = 5
    failure_window: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 8.0
    start_timeout: float = 30.0


class ToolCallError(Exception):
    """A tool answered with an error; the message is its one line."""


class HostUnavailable(Exception):
    """The ecosystem is not running (starting, restarting, or failed)."""


class Host:
    """Owns the child process and the MCP client; `call()` works from any task once ready."""

    def __init__(self, options: HostOptions, on_change: Callable[[str, str | None], None] | None = None) -> None:
        self.options = options
        self.journal = options.journal or _new_journal(options.sessions)
        self.state = "stopped"
        self.last_error: str | None = None
        self.pid: int | None = None
        self.tools: list[dict[str, Any]] = []
        self.restarts = 0
        self.on_change = on_change
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._restart_now = asyncio.Event()
        self._failures: deque[float] = deque()
        self._task: asyncio.Task[None] | None = None
        self.stderr_path = self.journal.with_name(self.journal.stem + ".stderr.log")

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the child in the background; `wait_ready()` waits for it."""
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="mad-host")

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout or self.options.start_timeout)

    async def stop(self) -> None:
        """Close the client (the child records session_end and exits) and wait for the supervisor."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 20)
            self._task = None
        with contextlib.suppress(OSError):  # nothing was written there: no empty file beside the journal
            if self.stderr_path.stat().st_size == 0:
                self.stderr_path.unlink()
        self._set("stopped")

    async def restart(self) -> None:
        """Restart the whole ecosystem (same journal)."""
        self._ready.clear()
        self._restart_now.set()

    def _set(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error:
            self.last_error = error
        if self.on_change is not None:
            self.on_change(state, error)

    # calls ---------------------------------------------------------------------
    async def call(self, name: str, arguments: dict[str, Any] | None = None,
                   progress: ProgressCallback | None = None) -> Any:
        """Call a tool in the child; returns its JSON result; ToolCallError for an error result."""
        client = self._client
        if client is None or not self._ready.is_set():
            raise HostUnavailable(f"the ecosystem is {self.state}")
        try:
            result = await client.call_tool(name, arguments or {},
                                            progress_callback=cast("ProgressFnT | None", progress))
        except Exception as exc:  # the connection closed under the call (quit, restart, the child died): one line
            why = "the workbench is closing" if self._stop.is_set() else f"{type(exc).__name__}: {exc}"
            raise HostUnavailable(f"{name} was not answered: {why}".splitlines()[0]) from None
        text = "".join(getattr(block, "text", "") for block in result.content)
        if result.is_error:
            raise ToolCallError(text.strip().splitlines()[0] if text.strip() else f"{name} failed")
        if result.structured_content is not None:
            return result.structured_content
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    # the supervisor ----------------------------------------------------------
    def _command(self) -> StdioServerParameters:
        o = self.options
        args = ["-m", "madtui", "mcp", "--journal", str(self.journal), "--home", str(o.home),
                "--provider", o.provider]
        for folder in o.mad_path:
            args += ["--mad-path", str(folder)]
        for name in o.isolate:
            args += ["--isolate", name]
        if o.bus:
            args += ["--bus", o.bus, "--ecosystem", o.ecosystem, *(arg for name in o.mads for arg in ("--mads", name))]
        env = {**o.environ, "PYTHONUNBUFFERED": "1"}
        for name in ("MAD_PATH", "MAD_ISOLATE", "MAD_BUS", "MAD_MADS", "MAD_ECOSYSTEM"):
            env.pop(name, None)
        return StdioServerParameters(command=sys.executable, args=args, env=env)

    async def _supervise(self) -> None:
        delay = self.options.backoff
        while not self._stop.is_set():
            self._set("starting" if self.restarts == 0 and self.state != "restarting" else "restarting")
            ended = await self._run_once()
            if self._stop.is_set():
                break
            if ended == "restart":
                self.restarts += 1
                delay = self.options.backoff
                continue
            now = time.monotonic()
            self._failures.append(now)
            while self._failures and now - self._failures[0] > self.options.failure_window:
                self._failures.popleft()
            error = self.last_error or "the ecosystem stopped"
            if len(self._failures) >= self.options.max_failures:
                self._set("failed", f"{error} (gave up after {len(self._failures)} failures)")
                return
            self._set("restarting", error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self.options.max_backoff)
            self.restarts += 1

    async def _run_once(self) -> str:
        """One life of the child: 'stopped', 'restart' (asked for) or 'died'."""
        self._restart_now.clear()
        with self.stderr_path.open("a", encoding="utf-8") as errlog:
            try:
                async with Client(stdio_client(self._command(), errlog=errlog),
                                  read_timeout_seconds=600) as client:
                    self._client = client
                    self.pid = _child_pid(self.journal)
                    self.tools = [{"name": t.name, "description": t.description or "",
                                   "input_schema": t.input_schema} for t in (await client.list_tools()).tools]
                    self._ready.set()
                    self._set("running")
                    return await self._watch()
            except Exception as exc:  # the child failed to start or its pipe broke: restart with backoff
                self.last_error = _last_error(self.stderr_path) or f"{type(exc).__name__}: {exc}"
                return "died"
            finally:
                self._ready.clear()
                self._client = None

    async def _watch(self) -> str:
        waits: dict[asyncio.Future[Any], str] = {asyncio.ensure_future(self._stop.wait()): "stopped",
                 asyncio.ensure_future(self._restart_now.wait()): "restart"}
        if self.pid is not None:
            waits[asyncio.ensure_future(asyncio.to_thread(_wait_pid, self.pid))] = "died"
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        outcome = waits[next(iter(done))]
        if outcome == "died":
            self.last_error = _last_error(self.stderr_path) or f"the ecosystem process {self.pid} died"
        return outcome


def _new_journal(sessions: Path) -> Path:
    from mads.kernel.journal import new_session_path
    return new_session_path(sessions)


def _child_pid(journal: Path) -> int | None:
    """The pid of our `mad mcp` child: the one child whose command line names our journal."""
    for child in psutil.Process().children(recursive=False):
        with contextlib.suppress(psutil.Error):
            if str(journal) in child.cmdline():
                return child.pid
    return None


def _wait_pid(pid: int) -> None:
    """Wait for our child to exit without reaping it: the stdio client's own waiter must get its status."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return
    except (AttributeError, OSError):  # no waitid here: poll instead
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            while process.status() != psutil.STATUS_ZOMBIE:
                time.sleep(0.1)


def _last_error(path: Path) -> str | None:
    """The last meaningful line the child wrote on stderr."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    return lines[-1] if lines else None
