"""`mad mcp` as a real subprocess: every tool over stdio and over HTTP behind a bearer token, all journaled."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mads.kernel.journal.reader import read_events, read_modules
from tests.cli.test_cli import CORE_TOOLS
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOOLS = {"mad_status", "mad_send", "mad_restart_mad", "mad_pause", "mad_resume", "mad_profile", "mad_memory", "mad_reload"}
TOKEN = "known-token-6f1d2c"
PROBE = '''\
import asyncio

from mads.kernel import MAD, tool

STEP_SECONDS = 0.01  # a slow tool's pace, so its progress is seen


class Probe(MAD):
    """Test MAD."""

    @tool
    async def ping(self, text: str) -> dict:
        """Echo."""
        return {"echo": text}

    @tool
    async def count(self, n: int) -> list:
        """Count up to n."""
        return list(range(n))

    @tool
    async def noisy(self) -> str:
        """Print to stdout."""
        print("noise")
        return "quiet"

    @tool(long_running=True)
    async def slow(self, steps: int = 3) -> str:
        """Report progress."""
        for i in range(steps):
            await self.ctx.progress(i + 1, steps, f"step {i + 1}")
            await asyncio.sleep(STEP_SECONDS)
        return "done"
'''


@dataclass
class Setup:
    """The environment of one `mad mcp` run and where it leaves its journal."""

    env: dict[str, str]
    sessions: Path
    argv: list[str] = field(default_factory=lambda: [sys.executable, "-m", "madtui", "mcp"])

    def journal(self) -> Path:
        (path,) = self.sessions.glob("*.db")
        return path

    def events(self, kind: str) -> list[dict[str, Any]]:
        return list(read_events(self.journal(), kind=[kind]))

    def journal_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.sessions.iterdir() if p.is_file())


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """MAD_HOME, MAD_SESSIONS and a MAD_PATH holding the Probe MAD, all in tmp_path."""
    mads = tmp_path / "mads"
    mads.mkdir()
    (mads / "probe.py").write_text(PROBE)
    env = {"MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_MASTER_KEY": "a" * 64, "MAD_PATH": str(mads), "MAD_PROVIDER": "offline",
           "PYTHONPATH": str(ROOT)}
    return Setup(env, tmp_path / "sessions")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpServer:
    """A running `mad mcp --http` and the stderr lines it has written so far."""

    process: subprocess.Popen[str]
    url: str
    stderr: list[str]
    reader: threading.Thread

    def announce(self) -> str:
        wait_until(lambda: any("MCP at" in line for line in self.stderr) or self.process.poll() is not None,
                   what="the HTTP announce line")
        announced = [line for line in self.stderr if "MCP at" in line]
        assert len(announced) == 1, "".join(self.stderr)
        return announced[0]

    def stop(self) -> int:
        """SIGINT, then the exit code once every stderr line has been read."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=15)
        self.reader.join(timeout=15)
        return code


StartServer = Callable[..., HttpServer]


@pytest.fixture
def http_server(setup: Setup) -> Iterator[StartServer]:
    """Start `mad mcp --http 127.0.0.1:PORT` with extra variables; killed at the end if still running."""
    started: list[HttpServer] = []

    def start(**extra: str) -> HttpServer:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MAD_MCP_TOKEN"} | setup.env | extra
        process = subprocess.Popen([*setup.argv, "--http", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, cwd=ROOT)
        lines: list[str] = []
        reader = threading.Thread(target=collect, args=(process.stderr, lines), daemon=True)
        reader.start()
        server = HttpServer(process, f"http://127.0.0.1:{port}/mcp", lines, reader)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.reader.join(timeout=15)
        assert server.process.stderr is not None
        server.process.stderr.close()


def collect(stream: IO[str], lines: list[str]) -> None:
    """Append each line of the stream as it arrives, until it closes."""
    for line in stream:
        lines.append(line)


@asynccontextmanager
async def authorized(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP that sends the bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


async def test_stdio_serves_every_tool_with_json_results_progress_and_one_line_errors(setup: Setup) -> None:
    failures: list[Exception] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            failures.append(message)

    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=setup.env, cwd=ROOT)
    async with Client(params, message_handler=on_message) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert set(CORE_TOOLS) | {"probe_ping", "probe_slow"} | ADMIN_TOOLS <= names

        result = await client.call_tool("probe_ping", {"text": "hi"})
        assert not result.is_error and json.loads(result.content[0].text) == {"echo": "hi"}
        assert result.structured_content == {"echo": "hi"}
        result = await client.call_tool("probe_count", {"n": 3})
        assert not result.is_error and json.loads(result.content[0].text) == [0, 1, 2]

        for arguments, word in [({}, "text"), ({"text": 5}, "text"), ({"text": "a", "extra": 1}, "extra")]:
            result = await client.call_tool("probe_ping", arguments)
            (content,) = result.content
            assert result.is_error and word in content.text and "\n" not in content.text.strip(), content.text
        result = await client.call_tool("mad_restart_mad", {})
        assert result.is_error and "mad" in result.content[0].text and "\n" not in result.content[0].text.strip()

        with pytest.raises(MCPError):
            await client.call_tool("probe_nothing", {})

        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            seen.append((done, total, message))

        result = await client.call_tool("probe_slow", {"steps": 3}, progress_callback=on_progress)
        assert not result.is_error and result.content[0].text == "done"
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]

        result = await client.call_tool("probe_noisy", {})
        assert not result.is_error and result.content[0].text == "quiet"
        status = await client.call_tool("mad_status", {})
        assert not status.is_error and "probe" in status.structured_content["mads"]
    assert failures == []

    wait_until(lambda: any(setup.sessions.glob("*.db")) and setup.events("session_end"), what="session_end")
    kinds = [e["kind"] for e in read_events(setup.journal())]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    external = {(e["payload"]["tool"], e["payload"]["ok"]) for e in setup.events("external_call")}
    assert {("probe_ping", True), ("probe_ping", False), ("probe_slow", True), ("mad_status", True),
            ("mad_restart_mad", False), ("probe_nothing", False)} <= external
    calls = {e["payload"]["tool"] for e in setup.events("tool_call")}
    results = {(e["payload"]["tool"], e["payload"]["ok"]) for e in setup.events("tool_result")}
    assert {"probe_ping", "probe_count", "probe_slow", "probe_noisy"} <= calls
    assert {("probe_ping", True), ("probe_count", True), ("probe_slow", True), ("probe_noisy", True)} <= results
    logs = [e for e in setup.events("log") if e["payload"].get("message") == "noise"]
    assert logs and logs[0]["payload"]["level"] == "stdout"
    modules = {m["name"]: m for m in read_modules(setup.journal())}
    probe = next(m for m in modules.values() if "probe" in m["mads"])
    assert probe["source"] == PROBE and len(probe["sha256"]) == 64
    assert {"rogers", "fiedler", "turing", "dewey", "horace"} <= {mad for m in modules.values() for mad in m["mads"]}


async def test_http_needs_the_bearer_token_and_journals_rejections_without_the_token(
        setup: Setup, http_server: StartServer) -> None:
    server = http_server(MAD_MCP_TOKEN=TOKEN)
    line = server.announce()
    assert server.url in line and TOKEN not in line
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as http:
        assert (await http.post(server.url, json=request, headers=headers)).status_code == 401
        wrong = {**headers, "Authorization": "Bearer not-the-token"}
        assert (await http.post(server.url, json=request, headers=wrong)).status_code == 401

    async with authorized(server.url, TOKEN) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"probe_ping", "horace_write_file"} | ADMIN_TOOLS <= names
        result = await client.call_tool("probe_ping", {"text": "over http"})
        assert result.structured_content == {"echo": "over http"}

    assert server.stop() == 0
    rejected = [e["payload"] for e in setup.events("external_call") if e["payload"].get("status") == 401]
    assert len(rejected) == 2 and all(p["ok"] is False for p in rejected)
    assert any(e["payload"].get("tool") == "probe_ping" for e in setup.events("external_call"))
    assert setup.events("session_end")
    assert TOKEN.encode() not in setup.journal_bytes()


async def test_a_generated_token_is_printed_once_works_and_never_reaches_the_journal(
        setup: Setup, http_server: StartServer) -> None:
    server = http_server()
    line = server.announce()
    token = line.split("token ", 1)[1].split()[0].rstrip(";")
    assert len(token) >= 32
    async with authorized(server.url, token) as client:
        result = await client.call_tool("probe_ping", {"text": "generated"})
        assert result.structured_content == {"echo": "generated"}
    assert server.stop() == 0
    assert sum(token in written for written in server.stderr) == 1
    assert token.encode() not in setup.journal_bytes()


def test_a_non_loopback_address_needs_allow_remote(setup: Setup) -> None:
    done = subprocess.run([*setup.argv, "--http", "10.1.2.3:8000"], env={**os.environ, **setup.env},
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--allow-remote" in done.stderr
    assert done.stdout == "" and not any(setup.sessions.glob("*.db"))
