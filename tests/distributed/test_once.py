"""An entry whose effects committed but whose ack never reached Redis is answered from the record, not handled again."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mads.kernel import HUMAN, MAD, Config, Ecosystem, Message, tool
from mads.kernel.distributed import once
from mads.kernel.distributed.keys import GROUP
from mads.kernel.hub import ListSink
from tests.helpers import RedisServer, needs_redis, wait_for_async

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


async def test_a_copy_claimed_while_the_first_is_still_queued_runs_once(redis_server: RedisServer,
                                                                       tmp_path: Path) -> None:
    """An entry claimed again while its first delivery waits in the mailbox (or in the same group commit) is
    looked up when its turn comes, and answered from the record of the first."""
    host = ecosystem(redis_server.url, tmp_path / "host", ["counter"], [Counter])
    caller = ecosystem(redis_server.url, tmp_path / "caller", [])
    async with host, caller:
        assert host.node is not None
        item_of = host.node._item
        copies: list[Any] = []

        def claimed_again(runner, inbox, entry_id, fields, redelivered=False):  # type: ignore[no-untyped-def]
            item = item_of(runner, inbox, entry_id, fields, redelivered)
            if item is not None and not copies:  # the copy goes in line right behind the first
                copies.append(item_of(runner, inbox, entry_id, fields, True))
                asyncio.get_running_loop().call_soon(runner.mailbox.enter, copies[0])
            return item

        host.node._item = claimed_again  # type: ignore[method-assign]
        first = await caller.call_tool("counter_bump", {"key": "a"})
        second = await caller.call_tool("counter_bump", {"key": "a"})
        await wait_for_async(lambda: _settled(copies[0].receipt), what="the copy answered")
    assert (first, second) == (1, 2)  # the copy did not bump
    assert copies[0].future.result() == 1  # it was answered with the first one's result


async def _settled(receipt: Any) -> bool:
    return bool(receipt.finished)


class Ledger(MAD):
    """Writes each message it is sent into its state; one reading `boom` crashes after its write."""

    seen: ClassVar[list[str]] = []

    async def on_message(self, message: Message, addressed: bool) -> None:
        text = message.content.split(" ", 1)[1]
        Ledger.seen.append(text)
        db = self.ctx.state
        db.execute("CREATE TABLE IF NOT EXISTS lines (text TEXT NOT NULL)")
        db.execute("INSERT INTO lines (text) VALUES (?)", [text])
        if text == "boom":
            raise RuntimeError("boom")


async def test_a_crash_inside_a_group_commit_rolls_back_only_its_own_entry(redis_server: RedisServer,
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries read together are handled in one transaction: the crashing one is rolled back and answered with
    its error; those before it commit (then are acknowledged), those after it form the next group."""
    groups: list[list[str]] = []
    commit = once.Group.commit

    def counted(group: once.Group) -> Any:
        groups.append([receipt.entry for _, receipt, _, _ in group.outcomes])
        return commit(group)

    monkeypatch.setattr(once.Group, "commit", counted)
    Ledger.seen = []
    texts = ["one", "two", "boom", "three", "four"]
    host = ecosystem(redis_server.url, tmp_path / "host", ["ledger"], [Ledger])
    caller = ecosystem(redis_server.url, tmp_path / "caller", [])
    async with host, caller:
        assert host.node is not None
        inbox = host.node.keys.inbox("ledger")
        await caller.bus.register(HUMAN, None)
        conv = await caller.bus.create_conversation("group", [HUMAN, "ledger"])
        errors = ListSink(lambda e: e.kind == "message" and e.mad == "ledger")
        host.hub.add_sink(errors)
        sent = [Message.create(conv.id, HUMAN, f"@Ledger {t}") for t in texts]
        await asyncio.gather(*(caller.publish(m) for m in sent))  # one publish script: read together

        async def all_acknowledged() -> bool:
            pending = await host.node.redis.xpending(inbox, GROUP)
            return len(Ledger.seen) == len(texts) and pending["pending"] == 0 and await host.node.redis.xlen(inbox) == 0

        await wait_for_async(all_acknowledged, timeout=10, what="every entry handled and acknowledged")
        rows = [r[0] for r in host.runners["ledger"].ctx.state.execute("SELECT text FROM lines ORDER BY rowid")]
        recorded = host.runners["ledger"].ctx.state.execute(f"SELECT COUNT(*) FROM {once.TABLE}").fetchone()[0]
    assert Ledger.seen == texts  # each handled once, in order
    assert rows == ["one", "two", "three", "four"]  # the crash's own write rolled back, the others committed
    assert recorded == 4  # each committed entry's id recorded with its effects
    assert [len(g) for g in groups] == [2, 2]  # one, two | boom (alone, rolled back) | three, four
    assert [e.payload["message"]["reply_to"] for e in errors.events] == [sent[2].id]  # its error reply, once


async def test_replies_settled_with_a_call_result_between_them_are_each_recorded(redis_server: RedisServer,
                                                                               tmp_path: Path) -> None:
    """A settlement publishing replies and a call's result in one transaction tells each reply's own outcome to
    the event stream (a result between two replies does not shift them)."""
    from mads.kernel.distributed.receipt import Receipt

    host = ecosystem(redis_server.url, tmp_path / "host", ["counter"], [Counter])
    async with host:
        assert host.node is not None
        conv = await host.bus.create_conversation("settle", [HUMAN, "counter"])
        sent = ListSink(lambda e: e.kind == "message")
        host.hub.add_sink(sent)
        asked = [Message.create(conv.id, HUMAN, f"@Counter question {i}") for i in range(2)]
        replies = [m.reply("counter", f"answer {i}") for i, m in enumerate(asked)]
        inbox = host.node.keys.inbox("counter")
        first, second = (Receipt(inbox, f"0-{i + 1}", m.id, m.id) for i, m in enumerate(asked))
        first.replies, second.replies = [replies[0]], [replies[1]]
        call = Receipt(inbox, "0-3", "call-1", call={"id": "call-1", "reply": host.node.id})
        await host.node._settle([(first, None, None), (call, 7, None), (second, None, None)])
    assert [e.payload["message"]["id"] for e in sent.events] == [r.id for r in replies]
    assert all(e.payload["recipients"] == ["human"] for e in sent.events)


class Waiter(MAD):
    """Notes a message in its state; on `ask` it waits on its peer's tool."""

    heard: ClassVar[list[str]] = []

    async def on_message(self, message: Message, addressed: bool) -> None:
        text = message.content.split(" ", 1)[1]
        if text == "ask":
            Waiter.heard.append(await self.ctx.call("peer_check"))
            return
        db = self.ctx.state
        db.execute("CREATE TABLE IF NOT EXISTS lines (text TEXT NOT NULL)")
        db.execute("INSERT INTO lines (text) VALUES (?)", [text])


class Peer(MAD):
    """Answers only once the waiter's first message is answered (as a MAD waiting on that answer would)."""

    first_answered: ClassVar[asyncio.Event | None] = None

    @tool
    async def check(self) -> str:
        """Wait (3 s at most) for the first message's answer."""
        assert Peer.first_answered is not None
        try:
            await asyncio.wait_for(Peer.first_answered.wait(), 3)
        except TimeoutError:
            return "still waiting"
        return "answered first"


async def test_a_handler_waiting_on_another_mad_lets_the_entries_before_it_be_answered_first(
        redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit holds answers until the commit; a handler of the group about to wait on another MAD commits
    and answers those before it first, so that MAD (which may be waiting for one of them) is never deadlocked."""
    from mads.kernel.distributed.receipt import Receipt

    Waiter.heard, Peer.first_answered = [], asyncio.Event()
    host = ecosystem(redis_server.url, tmp_path / "host", ["waiter", "peer"], [Waiter, Peer])
    caller = ecosystem(redis_server.url, tmp_path / "caller", [])
    async with host, caller:
        await caller.bus.register(HUMAN, None)
        conv = await caller.bus.create_conversation("wait", [HUMAN, "waiter"])
        sent = [Message.create(conv.id, HUMAN, f"@Waiter {t}") for t in ("note", "ask")]
        finish = Receipt.finish

        def finished(receipt: Receipt, result: Any = None, error: BaseException | None = None) -> None:
            if receipt.message_id == sent[0].id:
                assert Peer.first_answered is not None
                Peer.first_answered.set()
            finish(receipt, result, error)

        monkeypatch.setattr(Receipt, "finish", finished)
        await asyncio.gather(*(caller.publish(m) for m in sent))  # one publish script: read together
        await wait_for_async(lambda: _true(bool(Waiter.heard)), timeout=10, what="the second handled")
        rows = [r[0] for r in host.runners["waiter"].ctx.state.execute("SELECT text FROM lines")]
    assert Waiter.heard == ["answered first"]
    assert rows == ["note"]


async def _true(value: bool) -> bool:
    return value
