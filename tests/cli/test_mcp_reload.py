"""Hot reload while `mad mcp` runs as a real process: the next call answers the new version."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from mads.kernel.journal.reader import read_events

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.01
"""How often a condition is checked while waiting on it."""
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
PONG = '''
    @tool
    async def pong(self) -> str:
        """A tool the first version did not have."""
        return "pong"
'''


def save(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def test_a_rewritten_module_answers_v2_while_mad_mcp_runs_and_the_client_is_told_the_tool_list_changed(
        tmp_path: Path) -> None:
    mads = tmp_path / "mads"
    mads.mkdir()
    module = mads / "probe.py"
    save(module, PING.format(version="v1", extra=""))
    env = {"MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_MASTER_KEY": "a" * 64, "MAD_PATH": str(mads), "PYTHONPATH": str(ROOT)}
    def journal_story() -> str:
        """What the child recorded about reloads: the diagnosis if a wait times out."""
        found = list((tmp_path / "sessions").glob("*.db"))
        if not found:
            return "no journal"
        kinds = ["reload", "reload_failed", "log"]
        return "; ".join(f"{e['kind']} {e['mad']} {e['payload']}" for e in read_events(found[0], kind=kinds))[-2000:]

    async def until(predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await predicate():
            assert time.monotonic() < deadline, f"condition not met in time: {journal_story()}"
            await asyncio.sleep(POLL_SECONDS)

    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=env, cwd=str(ROOT))
    async with Client(params) as client:
        assert (await client.call_tool("probe_ping", {})).content[0].text == "v1"
        save(module, PING.format(version="v2", extra=""))

        async def answers_v2() -> bool:
            return (await client.call_tool("probe_ping", {})).content[0].text == "v2"

        await until(answers_v2)
        async with client.listen(tools_list_changed=True) as changes:
            save(module, PING.format(version="v3", extra=PONG))
            try:
                event = await asyncio.wait_for(anext(aiter(changes)), 30)
            except TimeoutError:
                raise AssertionError(f"no tools/list_changed: {journal_story()}") from None
        assert type(event).__name__ == "ToolsListChanged"
        assert "probe_pong" in {t.name for t in (await client.list_tools()).tools}
        assert (await client.call_tool("probe_pong", {})).content[0].text == "pong"
    (journal,) = (tmp_path / "sessions").glob("*.db")
    reloads = list(read_events(journal, kind=["reload"]))
    assert len(reloads) == 2 and all(r["payload"]["old_hash"] != r["payload"]["new_hash"] for r in reloads)
