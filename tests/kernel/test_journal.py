"""The session journal: every event in one SQLite file, batched, redacted, durable against kill -9."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from mads.kernel import MAD, Config, Ecosystem, tool
from mads.kernel.journal import JournalWriter, record_session
from mads.kernel.journal import reader
from mads.kernel.events import Log, Record
from tests.helpers import wait_until


class Probe(MAD):
    """Answers pings."""

    @tool
    async def ping(self, text: str) -> str:
        """Echo."""
        self.ctx.log.info("pinged with %s", text)
        print("stray print to stderr", file=sys.stderr)
        return text


def test_writer_commits_batches_in_seq_order(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "j.db")
    for i in range(2500):
        writer.handle(Record("log", "probe", payload={"i": i}))
    writer.flush()
    writer.close()
    events = list(reader.read_events(tmp_path / "j.db"))
    assert [e["seq"] for e in events] == list(range(1, 2501))
    assert [e["payload"]["i"] for e in events] == list(range(2500))


def test_a_flush_waits_for_every_event_queued_before_it_across_batches(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "j.db")
    writer.set_meta("note", {"a": 1})
    for i in range(3500):
        writer.handle(Record("message", "human", "c", payload={"message": {"content": f"m{i}", "sender": "human"}}))
    writer.flush()
    assert writer.committed_seq == 3500 and writer.error is None
    assert reader.search(tmp_path, "m3499")[0]["seq"] == 3500
    writer.close()
    with sqlite3.connect(tmp_path / "j.db") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'note'").fetchone() == ('{"a":1}',)


def test_a_lone_event_is_committed_within_the_batch_time_without_a_flush(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "j.db")
    writer.handle(Record("log", "probe", payload={"line": "alone"}))
    wait_until(lambda: writer.committed_seq == 1, timeout=5, what="the lone event committed by the timer")
    assert [e["payload"] for e in reader.read_events(tmp_path / "j.db")] == [{"line": "alone"}]
    writer.close()


def test_a_journal_from_before_the_external_fts_index_keeps_its_messages_searchable_when_appended_to(
        tmp_path: Path) -> None:
    import sqlite_utils

    from mads.kernel.journal.store import connect, migrations

    path = tmp_path / "old.db"
    conn = connect(path)
    migrations.apply(sqlite_utils.Database(conn), stop_before="m003_fts_external")
    payload = json.dumps({"message": {"content": "written earlier", "sender": "human"}})
    conn.execute("INSERT INTO events(seq, wall, mono, kind, mad, conversation, payload) "
                 "VALUES (1, 0, 0, 'message', 'human', 'c', ?)", (payload,))
    conn.execute("INSERT INTO messages_fts(rowid, content, sender, conversation) "
                 "VALUES (1, 'written earlier', 'human', 'c')")  # as the writer used to index it
    conn.close()
    writer = JournalWriter(path)
    writer.handle(Record("message", "human", "c", payload={"message": {"content": "found later", "sender": "human"}}))
    writer.close()
    assert [hit["seq"] for hit in reader.search(tmp_path, "later")] == [2]
    (hit,) = reader.search(tmp_path, "earlier")
    assert hit["seq"] == 1 and "[earlier]" in hit["snippet"] and hit["sender"] == "human"


def test_reopening_a_journal_appends_after_the_last_event(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    for _ in range(2):
        writer = JournalWriter(path)
        writer.handle(Record("log", "probe", payload={}))
        writer.close()
    assert [e["seq"] for e in reader.read_events(path)] == [1, 2]


async def test_a_session_records_input_messages_tools_logs_and_module_sources(tmp_path: Path) -> None:
    eco = Ecosystem(Config(home=tmp_path / "home", include_package=False, environ={}), mads=[Probe])
    with record_session(eco, tmp_path / "sessions", argv=["mad", "send"], command="send") as recording:
        async with eco:
            await eco.send("@Probe ping text=hello")
    kinds = [e["kind"] for e in reader.read_events(recording.path)]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    for kind in ("human_input", "message", "tool_call", "tool_result", "stage", "log"):
        assert kind in kinds, kind
    logs = [e for e in reader.read_events(recording.path, kind=["log"])]
    assert any(e["mad"] == "probe" and e["payload"]["message"] == "pinged with hello" for e in logs)
    assert any(e["mad"] == "probe" and e["payload"]["message"] == "stray print to stderr" for e in logs)
    meta = reader.read_meta(recording.path)
    assert meta["argv"] == ["mad", "send"] and meta["python"] and meta["version"]
    summary = reader.summarize(recording.path)
    assert summary.events == len(kinds) and summary.mads == ["probe"]


async def test_package_modules_are_kept_with_source_and_hash(tmp_path: Path) -> None:
    eco = Ecosystem(Config(home=tmp_path / "home", environ={"MAD_MASTER_KEY": "b" * 64}))
    with record_session(eco, tmp_path / "sessions", argv=["mad"], command="run") as recording:
        async with eco:
            await eco.call_tool("horace_list_files")
    modules = {m["name"]: m for m in reader.read_modules(recording.path)}
    assert set(modules) == {"mads.rogers", "mads.fiedler", "mads.turing", "mads.dewey", "mads.horace", "mads.hopper"}
    import hashlib
    horace = modules["mads.horace"]
    assert hashlib.sha256(horace["source"].encode()).hexdigest() == horace["sha256"]
    events = list(reader.read_events(recording.path, mad=["horace"], kind=["tool_call"]))
    assert events[0]["code"] == horace["sha256"]


async def test_secrets_and_api_keys_reach_no_byte_of_the_journal(tmp_path: Path) -> None:
    secret, api_key = "s3cr3t-value-turing-42", "sk-test-api-key-0123456789"
    environ = {"MAD_MASTER_KEY": "c" * 64, "OPENAI_API_KEY": api_key}
    eco = Ecosystem(Config(home=tmp_path / "home", environ=environ))
    eco.learn_secrets(eco.tool("turing_set_secret"), {"value": secret})  # as `mad call` does, before recording
    with record_session(eco, tmp_path / "sessions", argv=["mad", "call", f"value={secret}"],
                        command="call") as recording:
        async with eco:
            await eco.call_tool("turing_set_secret", {"name": "k", "value": secret})
            await eco.send(f"@Turing set_secret name=j value={secret}")
            eco.hub.emit(Log(mad="kernel", level="info", message=f"oops {api_key} {secret}"))
    files = [p for p in recording.path.parent.iterdir()]
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data and api_key.encode() not in data, path
    exported = json.dumps(reader.export(recording.path))
    assert secret not in exported and api_key not in exported
    assert "[redacted]" in exported


LOAD_MAD = '''
import asyncio
from mads.kernel import MAD

PACE_SECONDS = 0.01  # 100 events every 10 ms: the load rate, not a wait


class Load(MAD):
    """Emits about 10,000 events a second."""

    async def on_start(self):
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self):
        n = 0
        while True:
            for _ in range(100):
                n += 1
                self.ctx.emit("log", level="debug", message=f"load {n}")
            await asyncio.sleep(PACE_SECONDS)
'''


def _committed(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("run", range(10))
def test_kill_9_under_load_leaves_a_sound_journal_with_every_committed_event(tmp_path: Path, run: int) -> None:
    (tmp_path / "mads").mkdir()
    (tmp_path / "mads" / "load.py").write_text(LOAD_MAD)
    sessions = tmp_path / "sessions"
    env = {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_PATH": str(tmp_path / "mads"),
           "MAD_SESSIONS": str(sessions), "MAD_MASTER_KEY": "d" * 64}
    proc = subprocess.Popen([sys.executable, "-m", "madtui", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().startswith("mad: ready")
        (journal,) = sessions.glob("*.db")
        wait_until(lambda: _committed(journal) >= 3000, what="3,000 committed events")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(journal)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert len(seqs) >= 3000
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_finished_journal_is_one_file_and_reading_it_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = JournalWriter(path)
    writer.handle(Record("message", "human", "c", payload={"message": {"content": "hello there", "sender": "human"}}))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    assert [e["seq"] for e in reader.read_events(path)] == [1]
    assert reader.summarize(path).events == 1
    assert [hit["seq"] for hit in reader.search(tmp_path, "hello")] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_a_journal_open_elsewhere_when_it_is_closed_stays_sound_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = JournalWriter(path)
    writer.handle(Record("log", "probe", payload={"n": 1}))
    writer.flush()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as other:
        other.execute("BEGIN")
        assert other.execute("SELECT count(*) FROM events").fetchone() == (1,)  # holds a read snapshot
        writer.close()
        other.execute("COMMIT")
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
