"""Gateway figure: the p50 of one trivial tool call over stdio to `mad mcp`, against a bare MCP server.

Both sides are real subprocesses driven by the same MCP client: `python -m madtui mcp` with a
tiny MAD on MAD_PATH (the package MADs and recording on, as a user runs it), and a script
serving the same echo tool from a bare `MCPServer`.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from .harness import Sample, figure, percentile

ROOT = Path(__file__).resolve().parents[1]
WARMUP_CALLS = 20

_ECHO_MAD = '''\
"""A MAD whose one tool answers at once: what the gateway benchmark calls."""
from mads.kernel import MAD, tool


class Parrot(MAD):
    """Repeats what it is told."""

    @tool
    async def echo(self, text: str) -> str:
        """Return the text."""
        return text
'''

_BARE_SERVER = '''\
"""The same echo tool from a bare MCPServer over stdio: the gateway benchmark's baseline."""
from mcp.server import MCPServer

server = MCPServer("bench")


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


server.run()
'''

_perf = time.perf_counter


async def call_p50_ms(params: StdioServerParameters, tool: str, n: int) -> float:
    """p50 ms of n calls of the tool with a short text, after a few untimed calls; each answer is checked."""
    latencies: list[float] = []
    async with Client(params, read_timeout_seconds=60) as client:
        for i in range(WARMUP_CALLS + n):
            text = f"hi {i}"
            started = _perf()
            result = await client.call_tool(tool, {"text": text})
            elapsed = _perf() - started
            answer = result.content[0].text if result.content else None  # type: ignore[union-attr]
            if result.is_error or answer != text:
                raise RuntimeError(f"{tool} answered {answer!r} to {text!r} (error: {result.is_error})")
            if i >= WARMUP_CALLS:
                latencies.append(elapsed)
    return percentile(latencies, 50) * 1000


def _gateway(tmp: Path) -> StdioServerParameters:
    mads = tmp / "mads"
    mads.mkdir()
    (mads / "parrot.py").write_text(_ECHO_MAD)
    env = {"MAD_HOME": str(tmp / "home"), "MAD_SESSIONS": str(tmp / "sessions"), "MAD_MASTER_KEY": "a" * 64,
           "MAD_PATH": str(mads), "MAD_PROVIDER": "offline", "PYTHONPATH": str(ROOT)}
    return StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=env, cwd=ROOT)


def _bare(tmp: Path) -> StdioServerParameters:
    script = tmp / "bare_server.py"
    script.write_text(_BARE_SERVER)
    return StdioServerParameters(command=sys.executable, args=[str(script)], env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)


@figure("gateway_roundtrip", unit="ms", target="ratio <= 1.5; value < 2", n=200, quick_n=100)
async def gateway_roundtrip(n: int) -> Sample:
    """p50 ms of n calls of `parrot_echo(text)` over stdio to a `mad mcp` subprocess (MCP client, call to answer).

    Baseline: the same calls of `echo(text)` from a bare MCPServer script over stdio, same client, same n.
    """
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as tmp:
        baseline = await call_p50_ms(_bare(Path(tmp)), "echo", n)
        value = await call_p50_ms(_gateway(Path(tmp)), "parrot_echo", n)
    return Sample(value, baseline)
