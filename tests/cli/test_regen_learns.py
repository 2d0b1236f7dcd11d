"""`mad regen` learns the noise of answers that carry times and random ids, and generates through the model."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import mads
import pytest
from click.testing import CliRunner

from madtui.cli import cli
from mads.kernel import Config, Ecosystem
from mads.kernel.journal import reader, record_session

KEY = "b" * 64
STAMP = '''
"""Stamp: labels with the time and a random id."""
import time
import uuid

from mads.kernel import MAD, tool


def _clock() -> str:
    return time.strftime("%H:%M:%S") + f".{time.time_ns() % 1_000_000:06d}"


class Stamp(MAD):
    """Stamps labels."""

    @tool
    async def make(self, label: str) -> dict:
        """A stamp for a label."""
        token = uuid.uuid4().hex
        return {"label": label, "id": token, "at": _clock(), "note": f"stamp {token[:8]} for {label} at {_clock()}"}
'''
STAMP_REWRITTEN = '''
"""Stamp: labels with the time and a random id."""
import time
import uuid

from mads.kernel import MAD, tool


class Stamp(MAD):
    """Stamps labels."""

    @tool
    async def make(self, label: str) -> dict:
        """A stamp for a label."""
        fresh = uuid.uuid4().hex
        when = self._now()
        return {"label": label, "id": fresh, "at": when, "note": f"stamp {fresh[:8]} for {label} at {self._now()}"}

    @staticmethod
    def _now() -> str:
        stamp = time.strftime("%H:%M:%S")
        return f"{stamp}.{time.time_ns() % 1_000_000:06d}"
'''
STAMP_CHANGED = STAMP.replace('f"stamp {token[:8]} for {label}', 'f"stamp {token[:8]} for {label.upper()}')


@dataclass
class Setup:
    root: Path
    env: dict[str, str]

    def mad(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """A session with Stamp (times and random ids in every answer) and Horace, recorded in-process."""
    root = tmp_path_factory.mktemp("stamp")
    folder = root / "mads"
    folder.mkdir()
    (folder / "stamp.py").write_text(STAMP)

    async def run() -> None:
        eco = Ecosystem(Config(home=root / "home", mad_path=[folder], environ={"MAD_MASTER_KEY": KEY},
                               sample_interval=0))
        with record_session(eco, root / "sessions", argv=["test"], command="test"):
            async with eco:
                for label in ("apples", "pears", "plums"):
                    await eco.send(f"@Stamp make label={label}")
                await eco.send("@Horace write_file path=list.txt content=apples")
                await eco.send("@Horace read_file path=list.txt")

    asyncio.run(run())
    env = {"MAD_HOME": str(root / "home"), "MAD_SESSIONS": str(root / "sessions"), "MAD_PATH": str(folder),
           "MAD_MASTER_KEY": KEY, "MAD_PROVIDER": "offline"}
    return Setup(root, env)


def candidate(setup: Setup, tmp_path: Path, text: str) -> str:
    path = tmp_path / "candidate.py"
    path.write_text(text)
    return str(path)


def test_a_rewrite_of_a_noisy_mad_passes_with_the_noise_learned(recorded: Setup, tmp_path: Path) -> None:
    code, out, _ = recorded.mad("regen", "stamp", "--candidate", candidate(recorded, tmp_path, STAMP_REWRITTEN),
                                "--json")
    report = json.loads(out)
    (entry,) = report["behaviour"]["recordings"]
    assert code == 0 and entry["status"] == "same", json.dumps(entry, indent=1)[:3000]
    noise = entry["noise"]
    assert any(path.endswith("result.id") for path in noise) and any(path.endswith("result.at") for path in noise)
    assert not any(path.endswith("result.label") for path in noise)


def test_a_real_change_in_the_same_noisy_mad_still_fails(recorded: Setup, tmp_path: Path) -> None:
    code, out, _ = recorded.mad("regen", "stamp", "--candidate", candidate(recorded, tmp_path, STAMP_CHANGED), "--json")
    report = json.loads(out)
    (entry,) = report["behaviour"]["recordings"]
    assert code == 1 and entry["status"] == "differs" and entry["diverged"] == ["stamp"]
    first = entry["mads"]["stamp"]["first_divergence"]
    assert "for APPLES at" in first["candidate"]["result"]["note"]
    assert "for apples at" in first["recorded"]["result"]["note"]


def test_the_scripted_model_writes_horace_and_a_reply_that_does_not_compile_is_repaired(
        recorded: Setup, tmp_path: Path) -> None:
    horace = (Path(mads.__file__).parent / "horace.py").read_text()
    rewrite = horace.replace("def _now() -> str:", "def _now() -> str:  # the time now, in UTC")
    script = tmp_path / "script.jsonl"
    replies = [{"mad": "regen", "text": "Here it is:\n```python\nclass Horace(MAD:\n    pass\n```"},
               {"mad": "regen", "text": f"Fixed:\n```python\n{rewrite}```\n", "usage": {"input_tokens": 900,
                                                                                         "output_tokens": 700}}]
    script.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    env = {**recorded.env, "MAD_PROVIDER": "scripted", "MAD_SCRIPT": str(script)}
    result = CliRunner().invoke(cli, ["regen", "horace", "write a comment", "--json"], env=env,
                                catch_exceptions=False)
    report = json.loads(result.stdout)
    assert result.exit_code == 0, json.dumps({k: report.get(k) for k in ("static", "behaviour")}, indent=1)[:3000]
    generation = report["generation"]
    assert generation["generated"] and generation["attempts"] == 2
    assert generation["errors"][0]["stage"] == "compile" and "SyntaxError" in generation["errors"][0]["error"]
    assert generation["output_tokens"] >= 700 and generation["input_tokens"] >= 900
    folder = Path(report["candidate"]["folder"])
    assert (folder / "candidate.py").read_text() == rewrite
    assert report["behaviour"]["recordings"][0]["status"] == "same"
    # the session of `mad regen` is recorded: both prompts, the second shown the first one's error
    journal = [p for p in reader.session_files(recorded.root / "sessions")
               if reader.read_meta(p).get("command") == "regen"][-1]
    prompts = [e["payload"]["prompt"] for e in reader.read_events(journal, kind=["llm_call"])]
    assert len(prompts) == 2 and "SyntaxError" in prompts[1][-1]["content"]
    assert "horace_write_file" in prompts[0][1]["content"] and "write a comment" in prompts[0][1]["content"]
    steps = [(e["payload"]["step"], e["payload"]["ok"]) for e in reader.read_events(journal, kind=["regen"])]
    assert steps == [("generate", True), ("static", False), ("generate", True), ("static", True),
                     ("behaviour", True), ("report", True)]
