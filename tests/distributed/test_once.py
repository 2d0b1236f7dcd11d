"""An entry whose effects committed but whose ack never reached Redis is answered from the record, not handled again."""
from __future__ import annotations

from pathlib import Path

from mads.kernel import MAD, Config, Ecosystem, tool
from tests.helpers import RedisServer, needs_redis

pytestmark = needs_redis


class Counter(MAD):
    """Counts its calls in its own state."""

    @tool
    async def bump(self, key: str) -> int:
        """Add one to the key's count; return the count."""
        db = self.ctx.state
        db.execute("CREATE TABLE IF NOT EXISTS counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        db.execute("INSERT INTO counts (key, n) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET n = n + 1", [key])
        return int(db.execute("SELECT n FROM counts WHERE key = ?", [key]).fetchone()[0])


def ecosystem(url: str, home: Path, hosted: list[str], mads: list[type[MAD]] | None = None) -> Ecosystem:
    return Ecosystem(Config(home=home, bus=url, only=hosted, include_package=False, environ={}, sample_interval=0,
                            claim_idle=0.3, call_timeout=30), mads=mads)


async def test_a_redelivered_call_gets_the_recorded_answer_and_runs_once(redis_server: RedisServer,
                                                                        tmp_path: Path) -> None:
    host = ecosystem(redis_server.url, tmp_path / "host", ["counter"], [Counter])
    caller = ecosystem(redis_server.url, tmp_path / "caller", [])
    async with host, caller:
        assert host.node is not None
        settle_later = host.node._settle_later
        dropped: list[str] = []

        def die_before_the_ack(receipt, result, error):  # the process "dies" after its commit
            if not dropped:
                dropped.append(receipt.entry)
                return
            settle_later(receipt, result, error)

        host.node._settle_later = die_before_the_ack  # type: ignore[method-assign]
        first = await caller.call_tool("counter_bump", {"key": "a"})
        second = await caller.call_tool("counter_bump", {"key": "a"})
    assert dropped and (first, second) == (1, 2)  # the first answer came from the record: the tool ran once for it
