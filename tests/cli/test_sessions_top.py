"""CPU per message: every handled message is recorded with the CPU its MAD spent; `mad sessions top` ranks them."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from click.testing import CliRunner

from madtui.cli import cli
from mads.kernel import MAD, Config, Ecosystem, Message, tool
from mads.kernel.journal import reader, record_session


class Burner(MAD):
    """Works a little on each message, and hard on the one that asks for it."""

    @tool
    async def ping(self) -> str:
        """Say pong."""
        return "pong"

    async def on_message(self, message: Message, addressed: bool) -> None:
        if not addressed:
            return
        until = time.thread_time() + (0.2 if "heavy" in message.content else 0.001)
        while time.thread_time() < until:  # CPU, not waiting
            pass
        await self.ctx.publish(message.reply(self.name, "done"))


def recorded(root: Path) -> Path:
    async def run() -> Path:
        eco = Ecosystem(Config(home=root / "home", include_package=False, environ={}, sample_interval=0),
                        mads=[Burner])
        with record_session(eco, root / "sessions", argv=["test"], command="test") as recording:
            assert recording is not None
            async with eco:
                for number in range(50):
                    text = "@Burner heavy lifting, please" if number == 31 else f"@Burner light work {number}"
                    await eco.send(text, timeout=5)
                await eco.call_tool("burner_ping", {})
            return recording.path

    return asyncio.run(run())


def test_the_message_that_burned_the_cpu_tops_the_list(tmp_path: Path) -> None:
    journal = recorded(tmp_path)
    handled = list(reader.read_events(journal, kind=["handled"]))
    assert len([e for e in handled if e["payload"].get("message_id")]) == 50
    assert [e["payload"]["tool"] for e in handled if e["payload"].get("tool")] == ["burner_ping"]
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
