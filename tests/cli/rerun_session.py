"""A recorded session for the re-run tests: a Notes MAD, its script, and a real `mad mcp` driven over stdio."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from mads.kernel import Config, Ecosystem
from mads.kernel.journal import record_session

ROOT = Path(__file__).resolve().parents[2]
KEY = "a" * 64
NOTES = '''\
"""Notes: remembers items."""
from __future__ import annotations

from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, ToolError, tool

migrations = Migrations("notes")


@migrations()
def m001_items(db: Any) -> None:
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")


def _clean(item: str) -> str:
    text = item.strip()
    if not text:
        raise ToolError("nothing to remember")
    return text


class Notes(MAD):
    """Remembers items and recalls them."""

    migrations = migrations

    @tool
    async def remember(self, item: str) -> dict:
        """Remember one item."""
        text = _clean(item)
        self.ctx.state.execute("INSERT INTO items (item) VALUES (?)", [text])
        count = self.ctx.state.execute("SELECT count(*) FROM items").fetchone()[0]
        return {"remembered": text, "count": count}

    @tool
    async def recall(self) -> list:
        """Every item remembered, oldest first."""
        return [row[0] for row in self.ctx.state.execute("SELECT item FROM items ORDER BY id")]
'''
# The same behaviour: helpers reordered and renamed, one extracted, locals renamed, tools in another order.
NOTES_REWRITTEN = '''\
"""Notes: remembers items."""
from __future__ import annotations

from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, ToolError, tool

migrations = Migrations("notes")


def _column(db: Any, sql: str) -> list[Any]:
    return [row[0] for row in db.execute(sql).fetchall()]


def _normalised(raw: str) -> str:
    cleaned = raw.strip()
    if cleaned == "":
        raise ToolError("nothing to remember")
    return cleaned


@migrations()
def m001_items(db: Any) -> None:
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")


class Notes(MAD):
    """Remembers items and recalls them."""

    migrations = migrations

    @tool
    async def recall(self) -> list:
        """Every item remembered, oldest first."""
        return _column(self.ctx.state, "SELECT item FROM items ORDER BY id")

    @tool
    async def remember(self, item: str) -> dict:
        """Remember one item."""
        entry = _normalised(item)
        db = self.ctx.state
        db.execute("INSERT INTO items (item) VALUES (?)", [entry])
        (total,) = _column(db, "SELECT count(*) FROM items")
        return {"remembered": entry, "count": total}
'''
SCRIPT = [  # the Imperator of notes: a tool call, then an answer, for each prose message
    {"mad": "notes", "tool_calls": [{"name": "notes_remember", "arguments": {"item": "milk"}}]},
    {"mad": "notes", "text": "I will remember milk."},
    {"mad": "notes", "tool_calls": [{"name": "notes_recall", "arguments": {}}]},
    {"mad": "notes", "text": "You asked me to remember milk and bread."},
]


def changed(old: str, new: str) -> str:
    """NOTES with one piece of code replaced."""
    assert old in NOTES
    return NOTES.replace(old, new)


async def drive(env: dict[str, str]) -> None:
    """One session over stdio: human messages (commands and prose), external calls, a conversation made and used."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "madtui", "mcp"], env=env, cwd=ROOT)
    async with Client(params) as client:
        async def send(content: str, **extra: Any) -> None:
            result = await client.call_tool("mad_send", {"content": content, **extra})
            assert not result.is_error, result.content

        async def call(tool: str, **arguments: Any) -> Any:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content
            return result.structured_content

        await send("@Horace write_file path=a.txt content=hello")
        await send("@Notes please remember milk")
        await call("notes_remember", item="bread")
        await send("@Notes what do you remember?")
        await call("notes_recall")
        made = await call("rogers_create_conversation", name="shopping", participants=["human", "notes"])
        conversation = made["id"]
        await send("@Notes recall", conversation=conversation)
        await call("horace_read_file", path="a.txt")
        await send("@Dewey search query=hello")
        await send("@Dewey search query=milk")
        await call("rogers_get_messages", conversation_id=conversation)
        await call("fiedler_list_models")  # a re-run must report the recorded provider, not its replay


def record(root: Path) -> Path:
    """Run the session through a real `mad mcp` with the scripted provider; the journal it left."""
    mads, script = root / "mads", root / "script.jsonl"
    mads.mkdir(parents=True)
    (mads / "notes.py").write_text(NOTES)
    script.write_text("".join(json.dumps(reply) + "\n" for reply in SCRIPT))
    env = {"MAD_HOME": str(root / "home"), "MAD_SESSIONS": str(root / "sessions"), "MAD_MASTER_KEY": KEY,
           "MAD_PATH": str(mads), "MAD_PROVIDER": "scripted", "MAD_SCRIPT": str(script), "PYTHONPATH": str(ROOT)}
    asyncio.run(drive(env))
    (journal,) = (root / "sessions").glob("*.db")
    return journal


def idle_recording(root: Path) -> Path:
    """A session in which nothing came from outside: started and stopped."""
    async def run() -> Path:
        eco = Ecosystem(Config(home=root / "home", environ={"MAD_MASTER_KEY": KEY}, only=["horace"],
                               sample_interval=0))
        with record_session(eco, root / "idle", argv=["test"], command="test") as recording:
            assert recording is not None
            async with eco:
                await eco.settle()
        return recording.path

    return asyncio.run(run())
