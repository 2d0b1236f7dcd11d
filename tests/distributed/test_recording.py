"""A session across two processes is one journal: replay opens it, and a re-run in one process judges the code."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from madtui.replay import ReplayCursor
from mads.kernel.journal import reader
from tests.helpers import ROOT, MadNode, RedisServer, mad_cli, needs_redis

pytestmark = needs_redis

ECHOER = '''
from mads.kernel import MAD, tool


class Echoer(MAD):
    """Echoes in its own way."""

    @tool
    async def shout(self, text: str) -> str:
        """The text, {how}."""
        return text.{how}()
'''


def write_echoer(folder: Path, how: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echoer.py").write_text(ECHOER.format(how=how))
    return folder


def test_a_session_across_two_processes_is_one_journal_that_replays_and_reruns(redis_server: RedisServer,
                                                                               tmp_path: Path) -> None:
    mads = write_echoer(tmp_path / "mads", "upper")
    first = MadNode(redis_server.url, "rogers,fiedler,turing,dewey", tmp_path / "node1")
    second = MadNode(redis_server.url, "horace,echoer", tmp_path / "node2", "--mad-path", str(mads))
    env = {**first.env, "MAD_BUS": redis_server.url, "MAD_HOME": str(tmp_path / "attached")}
    sessions = tmp_path / "sessions"
    recorder = subprocess.Popen([sys.executable, "-m", "madtui", "record", "--sessions", str(sessions)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert recorder.stdout is not None and "recording" in recorder.stdout.readline()
        assert mad_cli(env, "call", "echoer_shout", "text=hello").stdout.strip() == '"HELLO"'
        assert mad_cli(env, "call", "horace_write_file", "path=r.txt", "content=recorded").returncode == 0
        assert mad_cli(env, "send", "@Dewey search query=recorded").returncode == 0
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        second.stop()
        first.stop()
    (journal,) = sessions.glob("*.db")
    events = list(reader.read_events(journal))
    nodes = {e.get("node") for e in events if e["kind"] in ("tool_result", "message", "sample")}
    assert len(nodes) >= 3  # the two hosts and the processes that called them, each marked
    assert {("tool_result", "echoer"), ("tool_result", "horace"), ("message", "dewey")} <= \
        {(e["kind"], e["mad"]) for e in events}
    assert any(m["name"].endswith("_echoer") for m in reader.read_modules(journal))
    cursor = ReplayCursor(journal)
    cursor.seek(cursor.last_seq)
    assert {"echoer", "horace", "dewey"} <= set(cursor.timeline.mads)
    cursor.close()
    same = mad_cli(env, "rerun", str(journal), "--mad-path", str(mads), "--json", "--sessions", str(tmp_path / "r1"))
    assert same.returncode == 0, same.stdout + same.stderr
    changed = mad_cli(env, "rerun", str(journal), "--mad-path", str(write_echoer(tmp_path / "changed", "lower")),
                      "--json", "--sessions", str(tmp_path / "r2"))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert json.loads(changed.stdout)["diverged"] == ["echoer"]
