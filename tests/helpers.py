"""Waiting on conditions (never a fixed sleep) for tests that cross a process boundary."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mads.kernel import MAD, Message, tool

POLL_SECONDS = 0.01


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll the predicate until it holds; AssertionError after the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        time.sleep(POLL_SECONDS)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Let the event loop run until the predicate holds; AssertionError after the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        await asyncio.sleep(POLL_SECONDS)


async def wait_for_async(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0,
                         what: str = "condition") -> float:
    """Await the predicate until it holds (it may ask a server); AssertionError after the timeout.
    Returns the seconds it took."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


ISOLATED_PROBE = '''
"""A MAD that runs in its own process and tries what a hostile module would try."""
import ctypes
import os
import socket
from pathlib import Path

from mads.kernel import MAD, Isolation, tool


class Probe(MAD):
    """Answers from its own process."""

    isolation = Isolation(memory_mb=256, cpu_seconds=CPU_SECONDS, call_timeout=CALL_TIMEOUT)

    @tool
    async def ping(self, text: str) -> dict:
        """Echo the text, with the pid this process sees."""
        return {"echo": text, "pid": os.getpid()}

    @tool
    async def hog(self, mb: int = 2048) -> int:
        """Allocate mb megabytes at once."""
        return len(bytearray(mb * 1024 * 1024))

    @tool
    async def segfault(self) -> str:
        """Read address 0 through ctypes."""
        ctypes.string_at(0)
        return "survived"

    @tool
    def spin(self) -> str:
        """Spin a sync loop forever."""
        while True:
            pass

    @tool
    async def look(self, paths: list[str], port: int = 0) -> dict:
        """What this process can see: its environment, these paths, and a TCP connection to 127.0.0.1:port."""
        seen = {}
        for path in paths:
            target = Path(path)
            try:
                seen[path] = "present" if target.exists() and (target.is_dir() or target.read_bytes() is not None) \\
                    else "absent"
                if target.is_dir() and any(target.iterdir()):
                    seen[path] = "listed"
            except OSError as exc:
                seen[path] = f"denied: {exc.strerror}"
        connection = None
        if port:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=3).close()
                connection = "connected"
            except OSError as exc:
                connection = f"refused: {exc.strerror or exc}"
        return {"environ": dict(os.environ), "paths": seen, "connection": connection}

    @tool
    async def secret(self, name: str) -> str:
        """A secret's value, through Turing."""
        return await self.ctx.secret(name)

    @tool
    async def exit(self, code: int) -> str:
        """End this process with an exit code."""
        os._exit(code)

    @tool
    async def think_aloud(self, prompt: str) -> dict:
        """Ask the LLM (through Fiedler), a MAD (through the bus) and log, all from this process."""
        self.ctx.log.warning("thinking about %s", prompt)
        answer = await self.ctx.llm([{"role": "user", "content": prompt}])
        files = await self.ctx.ask("@Horace list_files", "main", timeout=30)
        background = self.ctx.spawn(self._note(prompt))
        await background
        return {"llm": answer.text, "horace": files.sender, "noted": self.ctx.state["notes"].get("bg")["value"]}

    async def _note(self, prompt: str) -> None:
        self.ctx.state["notes"].upsert({"key": "bg", "value": prompt}, pk="key")

    @tool
    def burn(self, seconds: float) -> int:
        """Keep a CPU busy for some seconds."""
        import time
        end, turns = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            turns += 1
        return turns

    @tool
    async def call(self, tool: str, arguments: dict) -> object:
        """Call another MAD's tool."""
        return await self.ctx.call(tool, **arguments)

    @tool
    async def publish_as(self, sender: str, text: str) -> list:
        """Publish a message in `main` claiming to be someone else."""
        from mads.kernel import Message
        return await self.ctx.publish(Message.create("main", sender, text))

    @tool
    async def remember(self, key: str, value: str) -> str:
        """Keep a value in this MAD's own state."""
        self.ctx.state["notes"].upsert({"key": key, "value": value}, pk="key")
        return value

    @tool
    async def recall(self, key: str) -> str:
        """A value kept in this MAD's own state."""
        return self.ctx.state["notes"].get(key)["value"]
'''


def write_probe(folder: Path, *, call_timeout: float = 5.0, cpu_seconds: float = 60) -> Path:
    """The isolated probe MAD as a MAD_PATH module in `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    text = ISOLATED_PROBE.replace("CALL_TIMEOUT", repr(call_timeout)).replace("CPU_SECONDS", repr(cpu_seconds))
    (folder / "probe.py").write_text(text, encoding="utf-8")
    return folder


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (.ci/run installs it)")
SANDBOXES = [pytest.param("bwrap", marks=needs_bwrap), "rlimits"]
"""Isolation is tested inside bubblewrap and with resource limits only."""


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server is not installed (.ci/run installs it)")


class RedisServer:
    """A real redis-server on a free loopback port, its data in a folder of the test (AOF on: nothing acked lost)."""

    def __init__(self, folder: Path) -> None:
        import socket

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ready, timeout=20, what=f"redis-server on port {self.port}")

    def ready(self) -> bool:
        done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                              check=True).stdout


ROOT = Path(__file__).resolve().parents[1]


class MadNode:
    """A `mad run --bus` process hosting some MADs in a home of its own; it has printed its ready line."""

    def __init__(self, url: str, mads: str, home: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        import os
        import sys

        base = {k: v for k, v in os.environ.items() if not k.startswith("MAD_")}
        self.env = {**base, "MAD_MASTER_KEY": "ab" * 32, "PYTHONPATH": str(ROOT), **(env or {})}
        self.home = home
        self.process = subprocess.Popen(
            [sys.executable, "-m", "madtui", "run", "--bus", url, "--mads", mads, "--home", str(home),
             "--no-record", "--no-watch", *extra], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "ready" in line, line + (self.process.stderr.read() if self.process.poll() is not None else "")

    def kill(self) -> None:
        """SIGKILL: nothing of the process's own clean-up runs."""
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def mad_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`mad ...` as a real process in the repository, with this environment."""
    import sys

    return subprocess.run([sys.executable, "-m", "madtui", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


class Burner(MAD):
    """Works a little on each message, and hard on the one that asks for it."""

    @tool
    async def ping(self) -> str:
        """Say pong."""
        return "pong"

    async def on_message(self, message: Message, addressed: bool) -> None:
        if not addressed:
            return
        until = time.thread_time() + (0.2 if "heavy" in message.content else 0.003)
        while time.thread_time() < until:  # CPU, not waiting
            pass
        await self.ctx.publish(message.reply(self.name, "done"))


def record_burner(root: Path, sample_interval: float = 0.0) -> Path:
    """A recorded session of 50 messages to Burner (the 32nd burns 200 ms of CPU) and one tool call."""
    from mads.kernel import Config, Ecosystem
    from mads.kernel.journal import record_session

    async def run() -> Path:
        eco = Ecosystem(Config(home=root / "home", include_package=False, environ={},
                               sample_interval=sample_interval), mads=[Burner])
        with record_session(eco, root / "sessions", argv=["test"], command="test") as recording:
            assert recording is not None
            async with eco:
                for number in range(50):
                    text = "@Burner heavy lifting, please" if number == 31 else f"@Burner light work {number}"
                    await eco.send(text, timeout=5)
                await eco.call_tool("burner_ping", {})
            return recording.path

    return asyncio.run(run())


# the workbench (Textual Pilot and tmux) -------------------------------------------------------
async def until(pilot: Any, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Let a Pilot-driven app run until the predicate holds; AssertionError (with the screen) after the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)


def screen_text(app: Any) -> str:
    """What the app's terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def leftover_children(journal: Path) -> list[Any]:
    """Processes still running that belong to this test: our children, or any `mad mcp` on this journal."""
    import psutil

    found = {p.pid: p for p in psutil.Process().children(recursive=True)}
    for process in psutil.process_iter(["cmdline"]):
        if str(journal) in " ".join(process.info["cmdline"] or []):
            found[process.pid] = process
    return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@dataclass
class Terminal:
    """One tmux session on a private server (its socket in `folder`), running a command in `folder`."""

    socket: Path
    name: str
    folder: Path

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", self.name, key)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0) -> None:
        try:
            wait_until(lambda: predicate(self.screen()), timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.screen()}") from None

    def exit_status(self, timeout: float = 30.0) -> str:
        """Wait for the command to end; the line it wrote to exit.txt (`EXIT:<status>`)."""
        exit_file = self.folder / "exit.txt"
        wait_until(lambda: exit_file.exists() and exit_file.read_text().endswith("\n"), timeout=timeout,
                   what="the command exited")
        return exit_file.read_text().strip()

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=10)


def start_terminal(folder: Path, env: dict[str, str], args: list[str], size: tuple[int, int] = (80, 24),
                   name: str = "mad") -> Terminal:
    """`python -m madtui ARGS` in a detached tmux session of this size, in `folder`, with `env`; the shell writes
    its exit status to folder/exit.txt. Close it with `close()`."""
    import shlex
    import sys

    env = {"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **env}
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    command = (f"cd {shlex.quote(str(folder))} && env {assignments} {shlex.quote(sys.executable)} -m madtui "
               f"{' '.join(shlex.quote(a) for a in args)}; echo EXIT:$? > {shlex.quote(str(folder / 'exit.txt'))}")
    term = Terminal(socket=folder / "tmux.sock", name=name, folder=folder)
    term.tmux("-f", "/dev/null", "new-session", "-d", "-s", term.name, "-x", str(size[0]), "-y", str(size[1]),
              command, ";", "set-option", "-t", term.name, "remain-on-exit", "on")
    return term
