"""Two `mad run` processes on one Redis: every tool of both, calls and messages routed, both nodes in the status."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.helpers import ROOT, MadNode, RedisServer, mad_cli, needs_redis

pytestmark = needs_redis

CORE = "rogers,fiedler,turing,dewey"


@pytest.fixture
def two_nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[MadNode, MadNode]]:
    """The four core MADs in one process, Horace in another, each with its own home."""
    first = MadNode(redis_server.url, CORE, tmp_path / "node1")
    second = MadNode(redis_server.url, "horace", tmp_path / "node2")
    yield first, second
    second.stop()
    first.stop()


def test_the_tools_calls_and_messages_of_two_processes_meet(two_nodes, redis_server, tmp_path) -> None:
    first, second = two_nodes
    env = {**first.env, "MAD_BUS": redis_server.url, "MAD_HOME": str(tmp_path / "caller"), "MAD_NO_RECORD": "1"}
    listed = {t["name"]: t["mad"] for t in json.loads(mad_cli(env, "tools", "--json").stdout)}
    assert {listed[name] for name in ("horace_write_file", "dewey_search", "rogers_get_stats", "turing_grant",
                                      "fiedler_send")} == {"horace", "dewey", "rogers", "turing", "fiedler"}
    written = mad_cli(env, "call", "horace_write_file", "path=notes/a.txt", "content=hello", "--no-record")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["version"] == 1
    assert (tmp_path / "node2" / "files" / "notes" / "a.txt").read_text() == "hello"
    assert not (tmp_path / "caller" / "files" / "notes").exists()
    sent = mad_cli(env, "send", "@Horace write_file path=b.txt content=needle", "--no-record")
    assert sent.returncode == 0 and "── horace" in sent.stdout
    found = mad_cli(env, "send", "@Dewey search query=needle", "--json", "--no-record")
    hits = json.loads(found.stdout)["replies"][0]["data"]["result"]["hits"]
    assert any(hit["sender"] == "human" and "content=[needle]" in hit["snippet"] for hit in hits), hits


async def test_mad_status_over_mcp_shows_both_nodes(two_nodes, redis_server, tmp_path) -> None:
    first, second = two_nodes
    env = {**first.env, "MAD_HOME": str(tmp_path / "mcp")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp", "--bus", redis_server.url,
                                                           "--no-record"], env=env, cwd=ROOT)
    async with Client(params) as client:
        status = (await client.call_tool("mad_status", {})).structured_content
    hosts = {info["pid"]: sorted(info["mads"]) for info in status["nodes"].values()}
    assert hosts[first.process.pid] == ["dewey", "fiedler", "rogers", "turing"]
    assert hosts[second.process.pid] == ["horace"]
    horace = status["mads"]["horace"]
    assert horace["placement"] == "remote" and horace["state"] == "running" and len(horace["nodes"]) == 1
    assert status["nodes"][horace["nodes"][0]]["pid"] == second.process.pid
