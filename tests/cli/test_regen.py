"""`mad regen` on a real recording: rewrites pass, changes are named, static faults stop early, apply and rollback."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcp import Client, StdioServerParameters

from madtui.cli import cli
from madtui.regen.store import sha256
from mads.kernel.journal import reader
from tests.cli.rerun_session import KEY, NOTES, NOTES_REWRITTEN, changed, record
from tests.helpers import ROOT, mad_cli, wait_for_async

CHANGED_ANSWER = changed('return {"remembered": text, "count": count}',
                         'return {"remembered": text, "count": count, "length": len(text)}')
WITHOUT_RECALL = NOTES.split("    @tool\n    async def recall")[0]
BAD_MIGRATION = NOTES.replace('''class Notes(MAD):''', '''@migrations()
def m002_broken(db: Any) -> None:
    db.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")


class Notes(MAD):''')
ASKS_THE_LLM = changed("text = _clean(item)", "text = _clean(item)\n        await self.ctx.llm([{'role': 'user', 'content': text}])")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("recorded"))


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass
class Bench:
    """A test's own copy: the Notes module, MAD_HOME, the recording in its sessions folder."""

    root: Path
    module: Path
    env: dict[str, str]

    def mad(self, *args: str) -> Outcome:
        result = CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def candidate(self, text: str, name: str = "candidate.py") -> str:
        path = self.root / name
        path.write_text(text)
        return str(path)


@pytest.fixture
def bench(recording: Path, tmp_path: Path) -> Bench:
    mads = tmp_path / "mads"
    mads.mkdir()
    (mads / "notes.py").write_text(NOTES)
    (tmp_path / "sessions").mkdir()
    shutil.copy(recording, tmp_path / "sessions" / recording.name)
    env = {"MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"), "MAD_PATH": str(mads),
           "MAD_MASTER_KEY": KEY, "MAD_PROVIDER": "offline"}
    return Bench(tmp_path, mads / "notes.py", env)


def test_a_changed_answer_exits_1_naming_mad_recording_and_first_event_and_writes_only_when_accepted(
        bench: Bench, recording: Path) -> None:
    candidate = bench.candidate(CHANGED_ANSWER)
    done = bench.mad("regen", "notes", "--candidate", candidate, "--json")
    report = done.report()
    assert done.code == 1 and report["verdict"] == "differs" and report["static"]["ok"]
    (entry,) = report["behaviour"]["recordings"]
    assert entry["recording"] == recording.stem and entry["status"] == "differs" and entry["diverged"] == ["notes"]
    first = entry["mads"]["notes"]["first_divergence"]
    assert first["index"] == 3 and first["recorded"]["result"] == {"remembered": "milk", "count": 1}
    assert first["candidate"]["result"] == {"remembered": "milk", "count": 1, "length": 4}
    assert bench.module.read_text() == NOTES

    text = bench.mad("regen", "notes", "--candidate", candidate, "--apply")
    assert text.code == 1 and "DIFFERS: notes at its event 4" in text.stdout and recording.stem in text.stdout
    assert text.stdout.splitlines()[-1] == "behaviour differs"
    assert bench.module.read_text() == NOTES  # --apply alone never writes a changed behaviour

    accepted = bench.mad("regen", "notes", "--candidate", candidate, "--apply", "--accept-changes", "--json")
    assert accepted.code == 1 and accepted.report()["applied"]["new_sha256"] == sha256(CHANGED_ANSWER)
    assert bench.module.read_text() == CHANGED_ANSWER
    kept = Path(accepted.report()["applied"]["kept"])
    assert kept.read_text() == NOTES and kept.parent == bench.root / "home" / "regen" / "notes" / "history"
    folders = sorted(p.name for p in (bench.root / "home" / "regen" / "notes").iterdir() if p.name.isdigit())
    assert folders == ["1", "2", "3"]
    assert json.loads((bench.root / "home" / "regen" / "notes" / "3" / "report.json").read_text())["applied"]


@pytest.mark.parametrize("source, stage, reason", [
    ("class Notes(MAD:\n", "compile", "candidate.py:1: SyntaxError"),
    (WITHOUT_RECALL, "interface", "removes notes_recall"),
    (BAD_MIGRATION, "migrations", "migration failed: OperationalError: no such table: no_such_table"),
    (NOTES.replace("class Notes(MAD)", "class Jottings(MAD)"), "name", "defines no MAD named 'notes'"),
], ids=["does-not-compile", "removes-a-tool", "migration-fails", "another-name"])
def test_a_static_fault_exits_1_at_the_static_gate_with_its_reason_and_writes_nothing(
        bench: Bench, source: str, stage: str, reason: str) -> None:
    done = bench.mad("regen", "notes", "--candidate", bench.candidate(source), "--apply", "--accept-changes",
                     "--json")
    report = done.report()
    assert done.code == 1 and report["verdict"] == "failed"
    assert report["static"]["ok"] is False and report["static"]["stage"] == stage
    assert reason in report["static"]["error"]
    assert report["behaviour"] is None and report["applied"] is None
    assert bench.module.read_text() == NOTES
    if stage == "compile":  # the text report says the same in one line
        text = bench.mad("regen", "notes", "--candidate", bench.candidate(source))
        assert f"static gate:  FAILED at {stage}: " in text.stdout and text.code == 1


def test_an_interface_change_passes_when_allowed(bench: Bench) -> None:
    done = bench.mad("regen", "notes", "--candidate", bench.candidate(WITHOUT_RECALL), "--allow-interface-change",
                     "--json")
    report = done.report()
    assert report["static"]["ok"] and report["interface"]["removed"] == ["notes_recall"]
    # `@Notes recall` is no longer a command: it goes to the model, which the recording never asked
    assert done.code == 1 and report["behaviour"]["recordings"][0]["status"] == "unusable"


def test_an_llm_call_the_recording_cannot_answer_makes_it_unusable(bench: Bench) -> None:
    done = bench.mad("regen", "notes", "--candidate", bench.candidate(ASKS_THE_LLM), "--json")
    report = done.report()
    (entry,) = report["behaviour"]["recordings"]
    assert entry["status"] == "unusable" and "LLM call was not recorded" in entry["reason"]
    assert done.code == 1 and "no recording could be re-run" in report["behaviour"]["error"]


def test_usage_errors_exit_2_and_change_nothing(bench: Bench) -> None:
    candidate = bench.candidate(NOTES_REWRITTEN)
    for args, message in [
        (["regen", "nobody", "--candidate", candidate], "no MAD named 'nobody'"),
        (["regen", "notes", "--candidate", str(bench.root / "missing.py")], "candidate file not found"),
        (["regen", "notes", "--candidate", candidate, "--accept-changes"], "--accept-changes only goes with --apply"),
        (["regen", "notes", "--candidate", candidate, "--against", "nosuch"], "no session 'nosuch'"),
        (["regen"], "name the MAD to regenerate"),
        (["regen", "--rollback", "notes"], "nothing to roll back"),
    ]:
        done = bench.mad(*args)
        assert done.code == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert bench.module.read_text() == NOTES
    assert not (bench.root / "home" / "regen").exists()


def test_golden_recordings_are_chosen_first(bench: Bench, recording: Path, tmp_path_factory: pytest.TempPathFactory
                                            ) -> None:
    other = bench.root / "sessions" / "20200101T000000.000Z-000000.db"
    shutil.copy(recording, other)
    candidate = bench.candidate(NOTES_REWRITTEN)
    report = bench.mad("regen", "notes", "--candidate", candidate, "--json").report()
    assert report["behaviour"]["chosen_by"] == "last" and len(report["behaviour"]["recordings"]) == 2
    marked = bench.mad("sessions", "mark", recording.stem, "--golden")
    assert marked.code == 0 and reader.read_meta(bench.root / "sessions" / recording.name)["golden"] is True
    report = bench.mad("regen", "notes", "--candidate", candidate, "--json").report()
    assert report["behaviour"]["chosen_by"] == "golden"
    assert [r["recording"] for r in report["behaviour"]["recordings"]] == [recording.stem]
    assert bench.mad("sessions", "mark", recording.stem, "--unmark").code == 0
    assert bench.mad("sessions", "mark", recording.stem).code == 2


async def test_a_rewrite_exits_0_is_served_by_a_running_mad_mcp_once_applied_and_rolled_back(bench: Bench) -> None:
    env = {**bench.env, "MAD_SESSIONS": str(bench.root / "live-sessions"), "PYTHONPATH": str(ROOT)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=env, cwd=str(ROOT))
    cli_env = {**os.environ, **bench.env, "PYTHONPATH": str(ROOT)}
    async with Client(params) as client:
        async def version() -> str:
            status = (await client.call_tool("mad_status", {})).structured_content
            return status["mads"]["notes"]["version"]

        assert await version() == sha256(NOTES)[:12]
        done = await asyncio.to_thread(mad_cli, cli_env, "regen", "notes", "--candidate",
                                       bench.candidate(NOTES_REWRITTEN), "--apply", "--json")
        report = json.loads(done.stdout)
        assert done.returncode == 0 and report["verdict"] == "same", json.dumps(report["behaviour"], indent=1)[:3000]
        assert report["interface"] == {"added": [], "removed": [], "changed": [], "described": []}
        assert report["code"]["lines_added"] > 0 and report["gate"]["llm_tokens"] == 0
        assert bench.module.read_text() == NOTES_REWRITTEN

        async def serves(text: str) -> bool:
            return await version() == sha256(text)[:12]

        seconds = await wait_for_async(lambda: serves(NOTES_REWRITTEN), timeout=10, what="the new version served")
        print(f"applied module served after {seconds:.3f} s")
        result = await client.call_tool("notes_remember", {"item": "eggs"})
        assert result.structured_content == {"remembered": "eggs", "count": 1}

        back = await asyncio.to_thread(mad_cli, cli_env, "regen", "--rollback", "notes")
        assert back.returncode == 0 and "restored" in back.stdout
        assert bench.module.read_text() == NOTES
        await wait_for_async(lambda: serves(NOTES), timeout=10, what="the previous version served")
        further = await asyncio.to_thread(mad_cli, cli_env, "regen", "--rollback", "notes")
        assert further.returncode == 2 and "nothing to roll back" in further.stderr
