"""CPU per message: every handled message is recorded with the CPU its MAD spent; `mad sessions top` ranks them."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from madtui.cli import cli
from mads.kernel.journal import reader
from tests.helpers import record_burner


def test_the_message_that_burned_the_cpu_tops_the_list(tmp_path: Path) -> None:
    journal = record_burner(tmp_path)
    handled = list(reader.read_events(journal, kind=["handled"]))
    assert len([e for e in handled if e["payload"].get("message_id")]) == 50  # each costs 1 ms or more
    assert not [e for e in handled if e["payload"].get("tool")]  # the ping costs less: not journalled
    done = CliRunner().invoke(cli, ["sessions", "top", str(journal), "--limit", "3", "--json"])
    assert done.exit_code == 0, done.output
    first, *rest = json.loads(done.stdout)
    assert first["mad"] == "burner" and first["head"] == "@Burner heavy lifting, please"
    assert first["cpu_ms"] >= 150 and first["wall_ms"] >= first["cpu_ms"] * 0.9
    assert len(rest) == 2 and all(r["cpu_ms"] < 50 for r in rest)
    text = CliRunner().invoke(cli, ["sessions", "top", str(journal), "--mad", "burner", "--limit", "1"]).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["cpu", "ms", "wall", "ms", "MAD", "conversation", "first", "line"]
    assert lines[1].split()[2:] == ["burner", "main", "@Burner", "heavy", "lifting,", "please"]
    assert CliRunner().invoke(cli, ["sessions", "top", str(journal), "--mad", "nobody"]).exit_code == 0
