"""Hot reload: a regenerated module serves at once, keeps its state, loses nothing, and a broken one is refused."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from mcp import Client

from mads.kernel import Config, Ecosystem, MADUnavailable, Message
from mads.kernel.gateway import Gateway

PING = '''
from mads.kernel import MAD, tool

class Probe(MAD):
    """Answers pings."""

    @tool
    async def ping(self) -> str:
        """Say which version answers."""
        return "{version}"
{extra}
'''

COUNTER = '''
from sqlite_utils import Migrations
from mads.kernel import MAD, tool

migrations = Migrations("counter")

@migrations()
def m001_notes(db):
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
{more_migrations}

class Counter(MAD):
    """Keeps notes."""
    migrations = migrations

    @tool
    def add(self, text: str) -> int:
        """Add a note."""
        return self.ctx.state.execute("INSERT INTO notes (text) VALUES (?)", [text]).lastrowid

    @tool
    def notes(self) -> list:
        """Every note."""
        return [dict(r) for r in self.ctx.state.query("SELECT * FROM notes ORDER BY id")]
{self_check}
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    tmp = folder / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(path)  # as editors and generators save: atomically
    return path


POLL_SECONDS = 0.005
"""How often a condition is checked while waiting on it."""
RELOAD_GAP_SECONDS = 0.01
"""The 20 reloads are spread over the stream, not bunched at its start."""
STREAM_GAP_SECONDS = 0.001
"""The pace of the message stream: about 1,000 messages a second."""


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(POLL_SECONDS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "mads"
    path.mkdir()
    return path


def ecosystem(tmp_path: Path, folder: Path, watch: bool = False) -> Ecosystem:
    config = Config(home=tmp_path / "home", mad_path=[folder], include_package=False, environ={},
                    watch=watch, sample_interval=0)
    eco = Ecosystem(config)
    from mads.kernel import ListSink
    eco.events = ListSink()  # type: ignore[attr-defined]
    eco.hub.add_sink(eco.events)  # type: ignore[attr-defined]
    return eco


async def test_a_saved_module_serves_its_new_version_and_clients_hear_the_tool_list_changed(tmp_path, folder) -> None:
    write(folder, "probe.py", PING.format(version="v1", extra=""))
    heard: list[str] = []

    async def on_message(message) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method:
            heard.append(method)

    async with ecosystem(tmp_path, folder, watch=True) as eco:
        gateway = Gateway(eco)
        async with Client(gateway, message_handler=on_message, mode="legacy") as client:
            await client.list_tools()
            assert (await client.call_tool("probe_ping", {})).content[0].text == "v1"
            write(folder, "probe.py", PING.format(version="v2", extra=""))

            async def answers_v2() -> bool:
                return (await client.call_tool("probe_ping", {})).content[0].text == "v2"

            await until(answers_v2)
            assert heard == []  # same tool set: nothing to announce
            extra = '''
    @tool
    async def pong(self) -> str:
        """A new tool."""
        return "pong"
'''
            write(folder, "probe.py", PING.format(version="v3", extra=extra))

            async def has_pong() -> bool:
                return "probe_pong" in {t.name for t in (await client.list_tools()).tools}

            await until(has_pong)

            async def told() -> bool:
                return "notifications/tools/list_changed" in heard

            await until(told)
        reloads = eco.events.of("reload")
        assert [e.payload["action"] for e in reloads] == ["reloaded", "reloaded"]
        assert reloads[0].payload["old_hash"] != reloads[0].payload["new_hash"]


@pytest.mark.parametrize(("broken", "where"), [
    (PING.format(version="v2", extra="") + "\ndef broken(:\n", "probe.py:13: SyntaxError"),
    ("import no_such_module_anywhere\n" + PING.format(version="v2", extra=""), "probe.py:1: ModuleNotFoundError"),
    (PING.format(version="v2", extra="    def self_check(self):\n        raise RuntimeError('not ready')\n"),
     "probe.py:12: self_check failed: RuntimeError: not ready"),
])
async def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(tmp_path, folder, broken, where) -> None:
    path = write(folder, "probe.py", PING.format(version="v1", extra=""))
    async with ecosystem(tmp_path, folder) as eco:
        write(folder, "probe.py", broken)
        result = await eco.reloader.file_changed(path)
        assert result["ok"] is False and where in result["error"]
        assert await eco.call_tool("probe_ping") == "v1"
        failed = eco.events.of("reload_failed")[0]
        assert failed.mad == "probe" and where in failed.payload["error"] and str(path) in failed.payload["error"]


async def test_a_failing_migration_leaves_the_state_as_it_was(tmp_path, folder) -> None:
    path = write(folder, "counter.py", COUNTER.format(more_migrations="", self_check=""))
    async with ecosystem(tmp_path, folder) as eco:
        await eco.call_tool("counter_add", {"text": "kept"})
        bad = '''
@migrations()
def m002_tags(db):
    db.execute("ALTER TABLE notes ADD COLUMN tags TEXT")
    db.execute("UPDATE notes SET text = 'changed'")
    raise RuntimeError("half way")
'''
        write(folder, "counter.py", COUNTER.format(more_migrations=bad, self_check=""))
        result = await eco.reloader.file_changed(path)
        assert result["ok"] is False and "migration failed: RuntimeError: half way" in result["error"]
        assert "counter.py:15" in result["error"]
        assert await eco.call_tool("counter_notes") == [{"id": 1, "text": "kept"}]
        columns = [r[1] for r in eco.runners["counter"].ctx.state.execute("PRAGMA table_info(notes)")]
        assert columns == ["id", "text"]


async def test_a_migration_runs_before_the_swap_and_old_rows_are_read_by_the_new_version(tmp_path, folder) -> None:
    path = write(folder, "counter.py", COUNTER.format(more_migrations="", self_check=""))
    async with ecosystem(tmp_path, folder) as eco:
        await eco.call_tool("counter_add", {"text": "from v1"})
        added = '''
@migrations()
def m002_tags(db):
    db.execute("ALTER TABLE notes ADD COLUMN tags TEXT DEFAULT 'none'")
'''
        check = '''
    def self_check(self):
        assert "tags" in [r[1] for r in self.ctx.state.execute("PRAGMA table_info(notes)")]
'''
        write(folder, "counter.py", COUNTER.format(more_migrations=added, self_check=check))
        result = await eco.reloader.file_changed(path)
        assert result["ok"] is True, result
        assert await eco.call_tool("counter_notes") == [{"id": 1, "text": "from v1", "tags": "none"}]


async def test_a_new_file_brings_a_new_mad_and_a_deleted_file_retires_it(tmp_path, folder) -> None:
    write(folder, "probe.py", PING.format(version="v1", extra=""))
    async with ecosystem(tmp_path, folder) as eco:
        other = write(folder, "other.py", PING.format(version="other", extra="").replace("Probe", "Other"))
        await eco.reloader.file_changed(other)
        assert await eco.call_tool("other_ping") == "other"
        assert "other_ping" in eco.tools()
        other.unlink()
        await eco.reloader.file_changed(other)
        assert "other_ping" not in eco.tools()
        with pytest.raises(MADUnavailable, match="other was retired: .*other.py was deleted"):
            await eco.call_tool("other_ping")
        _, replies = await eco.send("@Other ping")
        assert replies[0].tags == ["error"] and "was deleted" in replies[0].content
        assert await eco.call_tool("probe_ping") == "v1"


async def test_messages_streamed_during_twenty_reloads_are_each_answered_exactly_once(tmp_path, folder) -> None:
    path = write(folder, "probe.py", PING.format(version="v0", extra=""))
    async with ecosystem(tmp_path, folder) as eco:
        sent: list[str] = []
        answered: dict[str, list[str]] = {}

        class Collector:
            def handle(self, event) -> None:
                if event.kind == "message" and event.payload["message"]["reply_to"]:
                    reply = event.payload["message"]
                    answered.setdefault(reply["reply_to"], []).append(reply["content"])

        eco.hub.add_sink(Collector())

        async def stream() -> None:
            for _ in range(1000):
                message = Message.create("main", "human", "@Probe ping")
                sent.append(message.id)
                await eco.publish(message)
                await asyncio.sleep(STREAM_GAP_SECONDS)

        streaming = asyncio.create_task(stream())
        for version in range(1, 21):
            write(folder, "probe.py", PING.format(version=f"v{version}", extra=""))
            assert (await eco.reloader.file_changed(path))["ok"]
            await asyncio.sleep(RELOAD_GAP_SECONDS)
        await streaming

        async def all_answered() -> bool:
            return len(answered) == len(sent)

        await until(all_answered)
        assert sorted(answered) == sorted(sent)
        assert all(len(replies) == 1 for replies in answered.values())
        assert all("#success" in replies[0] for replies in answered.values())
        versions = {replies[0].rsplit(" ", 1)[-1] for replies in answered.values()}
        assert "v20" in versions and len(versions) >= 5


async def test_a_kernel_change_is_reported_as_needing_a_restart(tmp_path, folder) -> None:
    from mads.kernel.reload import kernel_folder

    write(folder, "probe.py", PING.format(version="v1", extra=""))
    async with ecosystem(tmp_path, folder) as eco:
        result = await eco.reloader.file_changed(kernel_folder() / "bus.py")
        assert result["restart_needed"] is True
        event = eco.events.of("reload_failed")[0]
        assert event.mad == "kernel" and event.payload["restart_needed"] is True
        assert "restart the ecosystem" in event.payload["error"]
        assert await eco.call_tool("probe_ping") == "v1"


async def test_an_unchanged_save_reloads_nothing(tmp_path, folder) -> None:
    path = write(folder, "probe.py", PING.format(version="v1", extra=""))
    async with ecosystem(tmp_path, folder) as eco:
        write(folder, "probe.py", PING.format(version="v1", extra=""))
        assert await eco.reloader.file_changed(path) == {"ok": True, "changed": []}
        assert eco.events.of("reload") == []
