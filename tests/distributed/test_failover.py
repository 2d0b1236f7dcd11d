"""A process that dies leaves its entries pending; its restart or a replica answers every one, each once."""
from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from mads.kernel import Config, Ecosystem
from tests.helpers import MadNode, RedisServer, needs_redis, wait_for

pytestmark = needs_redis

CALLS = 200
CLAIM_IDLE = "0.5"


def attached(url: str, home: Path) -> Ecosystem:
    """An ecosystem in this test's process that hosts nothing and calls the others' MADs."""
    return Ecosystem(Config(home=home, bus=url, only=[], environ={"MAD_MASTER_KEY": "ab" * 32}, sample_interval=0,
                            call_timeout=60))


def answers_by_id(eco: Ecosystem) -> Counter[str]:
    """Count every answer that reaches this process, by call id (a second answer to a call would show here)."""
    seen: Counter[str] = Counter()
    assert eco.node is not None
    arrived = eco.node._arrived

    def counting(fields: dict[str, str]) -> None:
        if fields.get("kind") == "result":
            import json
            seen[json.loads(fields["answer"])["id"]] += 1
        arrived(fields)

    eco.node._arrived = counting  # type: ignore[method-assign]
    return seen


def versions(home: Path) -> Counter[int]:
    db = sqlite3.connect(home / "state" / "horace" / "horace.db")
    try:
        return Counter(row[0] for row in db.execute("SELECT version FROM files"))
    finally:
        db.close()


@pytest.mark.parametrize("replica", [False, True], ids=["restart", "replica"])
@pytest.mark.parametrize("run", range(10))
async def test_kill_9_halfway_through_200_writes_loses_and_repeats_nothing(redis_server: RedisServer, tmp_path: Path,
                                                                          replica: bool, run: int) -> None:
    home = tmp_path / "horace"
    first = MadNode(redis_server.url, "horace", home, "--claim-idle", CLAIM_IDLE)
    second = MadNode(redis_server.url, "horace", home, "--claim-idle", CLAIM_IDLE) if replica else None
    try:
        async with attached(redis_server.url, tmp_path / "caller") as eco:
            seen = answers_by_id(eco)
            calls = [asyncio.ensure_future(eco.call_tool("horace_write_file", {"path": f"w/{i:03d}.txt",
                                                                                "content": f"write {i}"}))
                     for i in range(CALLS)]
            await wait_for(lambda: sum(c.done() for c in calls) >= CALLS // 2, timeout=60, what="half the writes")
            first.kill()
            if second is None:
                second = MadNode(redis_server.url, "horace", home, "--claim-idle", CLAIM_IDLE)
            results = await asyncio.gather(*calls)
        assert sorted(r["path"] for r in results) == [f"w/{i:03d}.txt" for i in range(CALLS)]
        assert {r["version"] for r in results} == {1}
        assert len(seen) == CALLS and set(seen.values()) == {1}  # no answer sent twice
        assert versions(home) == Counter({1: CALLS})
        files = sorted(name for name in os.listdir(home / "files" / "w") if not name.startswith("."))
        assert files == [f"{i:03d}.txt" for i in range(CALLS)]  # (a write cut by the kill may leave a hidden temp)
    finally:
        first.stop()
        if second is not None:
            second.stop()
