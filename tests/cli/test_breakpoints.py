"""Breakpoints on the live bus over MCP: a message held, its conversation waiting, another flowing, an edit delivered."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from mads.kernel.journal import reader
from tests.helpers import ROOT, mad_cli, wait_for_async


async def test_a_held_message_waits_while_another_conversation_flows_and_the_edit_is_delivered(
        tmp_path: Path) -> None:
    env = {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_MASTER_KEY": "5" * 64}
    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=env, cwd=str(ROOT))
    async with Client(params) as client:
        async def call(tool: str, **arguments: object) -> dict:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content
            return result.structured_content

        point = await call("mad_break", mad="horace")
        assert point["id"]
        held_send = asyncio.ensure_future(client.call_tool("mad_send", {"content": "@Horace list_files",
                                                                        "timeout": 5}))
        listing: dict = {}

        async def held() -> bool:
            listing.update(await call("mad_breakpoints"))
            return bool(listing["held"])

        await wait_for_async(held, what="the message held")
        (entry,) = listing["held"]
        assert entry["content"] == "@Horace list_files" and entry["breakpoint"] == point["id"]
        assert listing["breakpoints"] == [{"id": point["id"], "mad": "horace", "hits": 1}]

        side = await call("rogers_create_conversation", name="side", participants=["human", "dewey"])
        answered = await call("mad_send", content="@Dewey search query=anything", conversation=side["id"])
        assert answered["replies"] and answered["replies"][0]["sender"] == "dewey"  # the other conversation flows
        assert not held_send.done()

        await asyncio.sleep(0)  # the held send's timeout (5 s) must not run while it is held: checked below
        done = await call("mad_continue", held_id=entry["held_id"],
                          content="@Horace write_file path=edited.txt content=e")
        assert done == {"held_id": entry["held_id"], "delivered": "@Horace write_file path=edited.txt content=e",
                        "edited": True}
        result = await held_send
        assert not result.is_error and result.structured_content["replies"][0]["sender"] == "horace"
        assert (tmp_path / "home" / "files" / "edited.txt").read_text() == "e"
        assert (await call("mad_breakpoints"))["held"] == []
        assert (await call("mad_unbreak", id=point["id"])) == {"removed": point["id"]}
        bad = await client.call_tool("mad_continue", {"held_id": "h999"})
        assert bad.is_error and "no held message 'h999'" in bad.content[0].text
    (journal,) = (tmp_path / "sessions").glob("*.db")
    hits = [e["payload"] for e in reader.read_events(journal, kind=["break_hit"])]
    continued = [e["payload"] for e in reader.read_events(journal, kind=["break_continue"])]
    assert [h["content"] for h in hits] == ["@Horace list_files"]
    assert [(c["original"], c["delivered"]) for c in continued] == [
        ("@Horace list_files", "@Horace write_file path=edited.txt content=e")]
    again = mad_cli(env, "rerun", str(journal))
    assert again.returncode == 0, again.stdout + again.stderr
