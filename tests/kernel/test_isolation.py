"""Isolated MADs: their own limited process, the same module, the same tools; their failures are theirs alone."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal

import psutil
import pytest

from mads.kernel import MAD, MadError, tool
from tests.helpers import SANDBOXES, wait_for, write_probe

CORE = ["turing", "horace"]


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_an_isolated_mad_runs_in_its_own_process_with_the_same_tools(make_ecosystem, tmp_path, sandbox) -> None:
    folder = write_probe(tmp_path / "mads")
    async with make_ecosystem(only=[*CORE, "probe"], mad_path=[folder], sandbox=sandbox, sample_interval=0) as eco:
        assert {"probe_ping", "probe_hog", "probe_converse"} <= set(eco.tools())
        assert (await eco.call_tool("probe_ping", {"text": "hi"}))["echo"] == "hi"
        status = eco.status()["mads"]
        assert status["probe"]["placement"] == "isolated" and status["horace"]["placement"] == "core"
        pid = status["probe"]["pid"]
        assert pid not in (None, os.getpid()) and status["horace"]["pid"] == os.getpid()
        assert "mads.kernel.isolation.child" in psutil.Process(pid).cmdline()
        replies = (await eco.send("@Probe ping text=bus"))[1]
        assert replies[0].sender == "probe" and "success" in replies[0].tags and replies[0].data["result"]["echo"] == "bus"
        await eco.call_tool("probe_remember", {"key": "k", "value": "kept"})
    async with make_ecosystem(only=[*CORE, "probe"], mad_path=[folder], sandbox=sandbox, sample_interval=0) as eco:
        assert await eco.call_tool("probe_recall", {"key": "k"}) == "kept"  # its own state, across processes
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_a_core_mad_forced_into_isolation_keeps_its_files_and_state(make_ecosystem, tmp_path, sandbox) -> None:
    async with make_ecosystem(only=CORE, isolate=["horace"], sandbox=sandbox, sample_interval=0) as eco:
        assert eco.status()["mads"]["horace"]["placement"] == "isolated"
        await eco.call_tool("horace_write_file", {"path": "notes/a.txt", "content": "one"})
        await eco.call_tool("horace_write_file", {"path": "notes/a.txt", "content": "two"})
    assert (tmp_path / "home" / "files" / "notes" / "a.txt").read_text() == "two"
    async with make_ecosystem(only=CORE, sample_interval=0) as eco:  # back in the core: the same files and versions
        assert eco.status()["mads"]["horace"]["placement"] == "core"
        assert (await eco.call_tool("horace_read_file", {"path": "notes/a.txt", "version": 1}))["content"] == "one"


@pytest.mark.parametrize("sandbox", SANDBOXES)
@pytest.mark.parametrize(("tool", "arguments", "cause"), [
    ("probe_hog", {}, "memory limit 256 MB"),
    ("probe_segfault", {}, "killed by signal 11 (SIGSEGV)"),
    ("probe_spin", {}, "call timeout 2 s"),
    ("probe_burn", {"seconds": 30}, "CPU limit 1 s"),
    ("probe_exit", {"code": 3}, "exited with code 3"),
])
async def test_a_failing_isolated_call_fails_alone_and_the_mad_restarts(make_ecosystem, tmp_path, sandbox, tool,
                                                                        arguments, cause) -> None:
    slow = tool == "probe_burn"  # the CPU limit is the one that ends it, not the clock
    folder = write_probe(tmp_path / "mads", call_timeout=30.0 if slow else 2.0, cpu_seconds=1 if slow else 60)
    async with make_ecosystem(only=[*CORE, "probe"], mad_path=[folder], sandbox=sandbox, sample_interval=0) as eco:
        first = eco.status()["mads"]["probe"]["pid"]
        failing = asyncio.create_task(eco.call_tool(tool, arguments))
        answered = 0
        while not failing.done():  # the neighbours answer throughout
            await eco.call_tool("turing_list_secrets", {})
            await eco.call_tool("horace_list_files", {})
            answered += 1
        with pytest.raises(MadError, match=f"^{re.escape(tool)} crashed: {re.escape(cause)}$"):
            await failing
        assert answered > 0
        crash = eco.events.of("crash")[-1]
        assert crash.mad == "probe" and crash.payload["error"] == cause
        assert (await eco.call_tool("probe_ping", {"text": "again"}))["echo"] == "again"
        assert eco.status()["mads"]["probe"]["pid"] not in (None, first)
        assert eco.events.of("restart")[-1].mad == "probe"


async def test_five_process_deaths_in_a_minute_make_an_isolated_mad_failed(make_ecosystem, tmp_path) -> None:
    folder = write_probe(tmp_path / "mads")
    async with make_ecosystem(only=["probe"], mad_path=[folder], sandbox="rlimits", sample_interval=0) as eco:
        for _ in range(5):
            with pytest.raises(MadError, match="memory limit 256 MB"):
                await eco.call_tool("probe_hog", {})
        assert eco.status()["mads"]["probe"]["state"] == "failed"
        with pytest.raises(MadError, match="probe has FAILED"):
            await eco.call_tool("probe_ping", {"text": "x"})


async def test_a_process_killed_between_calls_is_a_crash_and_comes_back(make_ecosystem, tmp_path) -> None:
    folder = write_probe(tmp_path / "mads")
    async with make_ecosystem(only=["probe"], mad_path=[folder], sandbox="rlimits", sample_interval=0) as eco:
        pid = eco.status()["mads"]["probe"]["pid"]
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: eco.events.of("restart"), what="a restart after the kill")
        assert eco.events.of("crash")[-1].payload["error"] == "killed by signal 9 (SIGKILL)"
        assert (await eco.call_tool("probe_ping", {"text": "back"}))["echo"] == "back"


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_its_own_process_cpu_and_rss_are_sampled_and_profiled_as_its_own(make_ecosystem, tmp_path,
                                                                             sandbox) -> None:
    from mads.kernel.resources import Sampler, profile

    folder = write_probe(tmp_path / "mads")
    async with make_ecosystem(only=["horace", "probe"], mad_path=[folder], sandbox=sandbox, sample_interval=0) as eco:
        sampler = Sampler(eco)
        sampler.start()
        burning = asyncio.create_task(eco.call_tool("probe_burn", {"seconds": 2.5}))
        profiled = await profile(eco, 1.5)
        figures = sampler.sample()["mads"]
        await burning
        await sampler.stop()
    probe = figures["probe"]
    assert probe["placement"] == "isolated" and probe["own_process"] and probe["pid"] == profiled["processes"]["probe"]
    assert probe["cpu_percent"] > 50 and probe["rss"] > 10 * 1024 * 1024
    assert "placement" not in figures["horace"]
    assert profiled["mads"]["probe"]["share"] >= 0.8
    assert profiled["mads"]["probe"]["top"][0]["function"].startswith("Probe.burn (probe.py:")


VERSIONED = '''
from sqlite_utils import Migrations
from mads.kernel import MAD, Isolation, tool

migrations = Migrations("versioned")

@migrations()
def m001_notes(db):
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
{more}

class Versioned(MAD):
    """Says which version answers."""

    isolation = Isolation(memory_mb=256)
    migrations = migrations

    @tool
    async def version(self) -> str:
        """The version."""
        return "{version}"

    @tool
    async def note(self, text: str) -> list:
        """Keep a note; every column of every note."""
        self.ctx.state.execute("INSERT INTO notes (text) VALUES (?)", [text])
        return [dict(r) for r in self.ctx.state.query("SELECT * FROM notes ORDER BY id")]
{check}
'''


async def test_a_reload_restarts_the_process_on_the_new_version_after_its_migrations_and_self_check(
        make_ecosystem, tmp_path) -> None:
    folder = tmp_path / "mads"
    folder.mkdir()
    path = folder / "versioned.py"
    path.write_text(VERSIONED.format(version="one", more="", check=""))
    async with make_ecosystem(only=["versioned"], mad_path=[folder], sandbox="rlimits", sample_interval=0) as eco:
        first = eco.status()["mads"]["versioned"]["pid"]
        await eco.call_tool("versioned_note", {"text": "a"})
        path.write_text(VERSIONED.format(version="two", check="", more='''
@migrations()
def m002_stars(db):
    db.execute("ALTER TABLE notes ADD COLUMN stars INTEGER DEFAULT 3")
'''))
        done = await eco.reloader.file_changed(path)
        assert done["ok"] and done["changed"] == [{"mad": "versioned", "action": "reloaded"}], done
        assert await eco.call_tool("versioned_version", {}) == "two"
        assert await eco.call_tool("versioned_note", {"text": "b"}) == [
            {"id": 1, "text": "a", "stars": 3}, {"id": 2, "text": "b", "stars": 3}]
        second = eco.status()["mads"]["versioned"]["pid"]
        assert second not in (None, first) and not psutil.pid_exists(first)

        path.write_text(VERSIONED.format(version="three", more="", check='''
    def self_check(self):
        raise RuntimeError("version three is not ready")
'''))
        refused = await eco.reloader.file_changed(path)
        assert not refused["ok"] and "self_check failed: RuntimeError: version three is not ready" in refused["error"]
        assert await eco.call_tool("versioned_version", {}) == "two"  # the old version keeps serving
        assert eco.status()["mads"]["versioned"]["pid"] == second
        assert eco.events.of("reload_failed")[-1].mad == "versioned"


async def test_from_its_own_process_a_mad_reaches_the_llm_other_mads_its_state_and_the_log(make_ecosystem, tmp_path,
                                                                                         monkeypatch) -> None:
    script = tmp_path / "replies.jsonl"
    script.write_text(json.dumps({"text": "forty-two"}) + "\n")
    folder = write_probe(tmp_path / "mads", call_timeout=2.0)
    async with make_ecosystem(only=["fiedler", "horace", "probe"], mad_path=[folder], sandbox="rlimits",
                              provider="scripted", environ={"MAD_SCRIPT": str(script)}, sample_interval=0) as eco:
        answer = await eco.call_tool("probe_think_aloud", {"prompt": "the answer"})
        assert answer == {"llm": "forty-two", "horace": "horace", "noted": "the answer"}
        logged = [e for e in eco.events.of("log") if e.mad == "probe"]
        assert logged and logged[-1].payload["message"] == "thinking about the answer"
        call = [e for e in eco.events.of("llm_call") if e.payload["caller"] == "probe"]
        assert len(call) == 1 and eco.status()["mads"]["probe"]["account"]["llm_calls"] == 1


def test_the_process_dies_with_the_ecosystem_even_when_the_ecosystem_is_killed(tmp_path) -> None:
    import subprocess
    import sys

    from tests.helpers import wait_until

    folder = write_probe(tmp_path / "mads")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAD_")}, "MAD_HOME": str(tmp_path / "home"),
           "MAD_MASTER_KEY": "c" * 64, "MAD_SANDBOX": "rlimits"}
    run = subprocess.Popen([sys.executable, "-m", "madtui", "run", "--no-record", "--no-watch", "--mad-path",
                            str(folder)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None and "ready" in run.stdout.readline()
        children = psutil.Process(run.pid).children(recursive=True)
        isolated = [p for p in children if "mads.kernel.isolation.child" in " ".join(p.cmdline())]
        assert len(isolated) == 2  # probe and hopper
        run.kill()  # SIGKILL: no clean-up runs in the ecosystem
        run.wait()
        wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in isolated),
                   what="the isolated processes gone with their parent")
    finally:
        if run.poll() is None:
            run.kill()


class Slow(MAD):
    """A core MAD that takes its time."""

    @tool
    async def wait(self, seconds: float) -> str:
        """Answer after some seconds (as a slow LLM would)."""
        await asyncio.sleep(seconds)
        return "waited"


async def test_the_call_timeout_counts_only_the_processs_own_time_not_its_waits_on_the_core(make_ecosystem,
                                                                                             tmp_path) -> None:
    folder = write_probe(tmp_path / "mads", call_timeout=1.0)
    async with make_ecosystem([Slow], only=["slow", "probe"], mad_path=[folder], sandbox="rlimits",
                              sample_interval=0) as eco:
        assert await eco.call_tool("probe_call", {"tool": "slow_wait", "arguments": {"seconds": 1.5}}) == "waited"
        assert eco.events.of("crash") == []
