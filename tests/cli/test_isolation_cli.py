"""Isolated MADs from the command line: `mad tools`, `mad call`, `mad mcp`, `--isolate`, MAD_ISOLATE, recordings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from mcp import Client, StdioServerParameters

from madtui.timeline import Timeline
from mads.kernel.journal import reader
from tests.helpers import SANDBOXES, write_probe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A `mad` environment in tmp_path whose MAD_PATH holds the isolated probe."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAD_")}
    return {**base, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
            "MAD_MASTER_KEY": "b" * 64, "MAD_PATH": str(write_probe(tmp_path / "mads")),
            "MAD_PROVIDER": "offline", "PYTHONPATH": str(ROOT)}


def mad(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madtui", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_tools_and_call_reach_an_isolated_mad_as_they_reach_any(env: dict[str, str], sandbox: str) -> None:
    env["MAD_SANDBOX"] = sandbox
    listed = {t["name"]: t for t in json.loads(mad(env, "tools", "--json").stdout)}
    assert listed["probe_ping"]["input_schema"]["required"] == ["text"]
    assert listed["probe_ping"]["description"] == "Echo the text, with the pid this process sees."
    done = mad(env, "call", "probe_ping", "text=hi", "--no-record")
    assert done.returncode == 0 and json.loads(done.stdout)["echo"] == "hi"
    missing = mad(env, "call", "probe_ping", "--no-record")
    assert (missing.returncode, missing.stderr.strip().splitlines()[-1]) == \
        (2, "mad: error: probe_ping: missing required argument 'text'")
    crashed = mad(env, "call", "probe_hog", "--no-record")
    assert (crashed.returncode, crashed.stderr.strip().splitlines()[-1]) == \
        (1, "mad: error: probe_hog crashed: memory limit 256 MB")


def test_isolate_and_mad_isolate_move_a_core_mad_out_and_its_files_stay(env: dict[str, str], tmp_path: Path) -> None:
    assert mad(env, "call", "--isolate", "horace", "horace_write_file", "path=a.txt", "content=hi").returncode == 0
    read = mad({**env, "MAD_ISOLATE": "horace,rogers"}, "call", "horace_read_file", "path=a.txt")
    assert read.returncode == 0 and json.loads(read.stdout)["content"] == "hi"
    assert (tmp_path / "home" / "files" / "a.txt").read_text() == "hi"
    refused = mad(env, "call", "--isolate", "turing", "turing_list_secrets")
    assert (refused.returncode, refused.stderr.strip()) == \
        (2, "mad: error: --isolate: turing keeps the kernel's keys and always runs in the core")
    unknown = mad({**env, "MAD_ISOLATE": "hoarce"}, "call", "horace_list_files")
    assert unknown.returncode == 2 and "no MAD named hoarce" in unknown.stderr


async def test_mcp_serves_isolated_mads_and_status_shows_their_own_pids(env: dict[str, str]) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp", "--isolate", "horace"],
                                   env=env, cwd=ROOT)
    async with Client(params) as client:
        assert {"probe_ping", "horace_write_file", "mad_status"} <= {t.name for t in (await client.list_tools()).tools}
        pinged = await client.call_tool("probe_ping", {"text": "over mcp"})
        assert not pinged.is_error and pinged.structured_content["echo"] == "over mcp"
        written = await client.call_tool("horace_write_file", {"path": "b.txt", "content": "x"})
        assert not written.is_error
        status = (await client.call_tool("mad_status", {})).structured_content["mads"]
        gateway = status["rogers"]["pid"]
        assert status["rogers"]["placement"] == "core"
        for name in ("probe", "horace"):
            assert status[name]["placement"] == "isolated"
            assert status[name]["pid"] not in (None, gateway)
            assert gateway in [p.pid for p in psutil.Process(status[name]["pid"]).parents()]


def test_a_recording_of_an_isolated_mad_replays_and_reruns_the_same(env: dict[str, str], tmp_path: Path) -> None:
    sent = mad(env, "send", "@Probe remember key=k value=kept")
    assert sent.returncode == 0, sent.stderr
    (journal,) = (tmp_path / "sessions").glob("*.db")
    kinds = {(e["kind"], e["mad"]) for e in reader.read_events(journal)}
    assert {("tool_call", "probe"), ("tool_result", "probe"), ("message", "probe")} <= kinds
    timeline = Timeline()
    timeline.apply(list(reader.read_events(journal)))
    assert any("kept" in line.text for line in timeline.mads["probe"].lines)
    again = mad(env, "rerun", "last")
    assert again.returncode == 0, again.stdout + again.stderr
    first, second = sorted((tmp_path / "sessions").glob("*.db"))
    assert mad(env, "sessions", "diff", str(first), str(second)).returncode == 0
