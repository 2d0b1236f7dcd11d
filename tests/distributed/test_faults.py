"""Faults of the distributed bus: one line each; Redis restarted under load loses no acknowledged message."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mads.kernel import Config, Ecosystem, ListSink
from tests.helpers import MadNode, RedisServer, mad_cli, needs_redis, wait_for

pytestmark = needs_redis


def test_an_unreachable_redis_is_exit_1_naming_the_url_without_its_password(tmp_path: Path) -> None:
    port = RedisServer(tmp_path / "never-started").port  # a free port nobody listens on
    url = f"redis://:hunter2-password@127.0.0.1:{port}/0"
    done = mad_cli({**os.environ, "MAD_HOME": str(tmp_path / "home")}, "call", "--bus", url, "horace_list_files")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"mad: error: cannot reach Redis at redis://***@127.0.0.1:{port}/0: ")
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr


def test_a_bad_bus_url_is_exit_2(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:6379", "redis://127.0.0.1:notaport/0", "redis://127.0.0.1:6379/zero"):
        done = mad_cli({**os.environ, "MAD_HOME": str(tmp_path / "home")}, "call", "--bus", url, "horace_list_files")
        assert done.returncode == 2 and done.stderr.startswith("mad: error: --bus:"), (url, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1


async def test_redis_restarted_under_load_answers_every_call(redis_server: RedisServer, tmp_path: Path) -> None:
    host = MadNode(redis_server.url, "horace", tmp_path / "horace", "--claim-idle", "1")
    try:
        config = Config(home=tmp_path / "caller", bus=redis_server.url, only=[], environ={}, sample_interval=0,
                        call_timeout=120)
        eco = Ecosystem(config)
        seen = ListSink(lambda e: e.kind in ("bus_lost", "bus_back"))
        eco.hub.add_sink(seen)
        async with eco:
            calls = []
            for i in range(200):
                calls.append(asyncio.ensure_future(eco.call_tool("horace_write_file", {"path": f"r/{i}.txt",
                                                                                       "content": str(i)})))
                if i == 80:
                    await wait_for(lambda: sum(c.done() for c in calls) >= 40, timeout=60, what="40 answers")
                    redis_server.stop()
                    redis_server.start()
                await asyncio.sleep(0)
            results = await asyncio.gather(*calls)
        assert sorted(r["path"] for r in results) == sorted(f"r/{i}.txt" for i in range(200))
        assert {r["version"] for r in results} == {1}
        assert [e.kind for e in seen.events][:2] == ["bus_lost", "bus_back"]
    finally:
        host.stop()
