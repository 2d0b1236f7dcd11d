"""Two processes hosting the same MAD share its calls, and each call is handled by one of them, once."""
from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

from mads.kernel import Config, Ecosystem
from tests.helpers import MadNode, RedisServer, needs_redis

pytestmark = needs_redis

WORKER = '''
import os
from sqlite_utils import Migrations
from mads.kernel import MAD, tool

migrations = Migrations("worker")


@migrations()
def m001_done(db):
    db.execute("CREATE TABLE done (n INTEGER PRIMARY KEY, pid INTEGER NOT NULL)")


class Worker(MAD):
    """Does numbered work, each number once."""

    migrations = migrations

    @tool
    async def work(self, n: int) -> dict:
        """Do the work numbered n (twice would break the primary key)."""
        self.ctx.state.execute("INSERT INTO done (n, pid) VALUES (?, ?)", [n, os.getpid()])
        return {"n": n, "pid": os.getpid()}
'''


async def test_two_replicas_share_200_calls_and_handle_each_once(redis_server: RedisServer, tmp_path: Path) -> None:
    folder = tmp_path / "mads"
    folder.mkdir()
    (folder / "worker.py").write_text(WORKER)
    home = tmp_path / "worker"
    replicas = [MadNode(redis_server.url, "worker", home, "--mad-path", str(folder)) for _ in range(2)]
    try:
        config = Config(home=tmp_path / "caller", bus=redis_server.url, only=[], mad_path=[folder],
                        environ={}, sample_interval=0, call_timeout=60)
        async with Ecosystem(config) as eco:
            results = await asyncio.gather(*(eco.call_tool("worker_work", {"n": n}) for n in range(200)))
    finally:
        for replica in replicas:
            replica.stop()
    assert sorted(r["n"] for r in results) == list(range(200))
    shares = Counter(r["pid"] for r in results)
    assert set(shares) == {r.process.pid for r in replicas}
    assert min(shares.values()) >= 40, shares  # each handles at least 20%
    db = sqlite3.connect(home / "state" / "worker" / "worker.db")
    assert db.execute("SELECT count(*), count(DISTINCT n) FROM done").fetchone() == (200, 200)
    db.close()
