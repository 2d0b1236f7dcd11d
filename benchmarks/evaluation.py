"""The LPPM evaluation set: 12 phrasings over Horace, Dewey and Rogers, their rule-mode oracle, and traps.

Each phrasing is a regex with named groups (the oracle's rule) and the tool call its groups
fill; it comes with 2-3 training values and 5 new ones. Shared by tests/kernel/test_lppm.py
and the lppm figures.
"""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mads.kernel import Config, Ecosystem, ListSink
from mads.kernel.journal import record_session

KEY = "f" * 64
# (mad, phrasing with named groups, tool, arguments from the groups, training values, new values)
PHRASINGS: list[tuple[str, str, str, dict[str, Any], list[dict[str, str]], list[dict[str, str]]]] = [
    ("horace", r"please save (?P<content>\w+) into (?P<path>\S+)", "horace_write_file",
     {"path": "{path}", "content": "{content}"},
     [{"content": "alpha", "path": "a.txt"}, {"content": "beta", "path": "b.txt"}],
     [{"content": w, "path": p} for w, p in [("gamma", "c.txt"), ("delta", "notes/d.md"), ("eps", "e.log"),
                                              ("zeta", "x/y/z.txt"), ("eta", "h.json")]]),
    ("horace", r"in (?P<path>\S+) write (?P<content>.+)", "horace_write_file",
     {"path": "{path}", "content": "{content}"},
     [{"path": "p.txt", "content": "the first line"}, {"path": "q.txt", "content": "another line here"},
      {"path": "r.txt", "content": "third"}],
     [{"path": f"w{i}.txt", "content": text} for i, text in enumerate(
         ["buy milk and eggs", "call the plumber", "x", "two words", "a much longer line of free text"])]),
    ("horace", r"show me the file (?P<path>\S+)", "horace_read_file", {"path": "{path}"},
     [{"path": "a.txt"}, {"path": "b.txt"}],
     [{"path": p} for p in ["c.txt", "notes/d.md", "e.log", "x/y/z.txt", "h.json"]]),
    ("horace", r"what was in (?P<path>\S+) at version (?P<version>\d+)", "horace_read_file",
     {"path": "{path}", "version": "{version}"},
     [{"path": "a.txt", "version": "1"}, {"path": "b.txt", "version": "1"}],
     [{"path": p, "version": "1"} for p in ["c.txt", "e.log", "h.json", "p.txt", "q.txt"]]),
    ("horace", r"list the files under (?P<prefix>\S+)", "horace_list_files", {"prefix": "{prefix}"},
     [{"prefix": "notes/d"}, {"prefix": "x/y"}],
     [{"prefix": p} for p in ["a/b", "x/y/z", "notes/2026", "docs/api", "src/mads"]]),
    ("horace", r"tag (?P<path>\S+) as (?P<tag>\w+)", "horace_tag_file", {"path": "{path}", "tags": ["{tag}"]},
     [{"path": "a.txt", "tag": "urgent"}, {"path": "b.txt", "tag": "later"}, {"path": "c.txt", "tag": "done"}],
     [{"path": p, "tag": t} for p, t in [("a.txt", "red"), ("b.txt", "blue"), ("e.log", "old"),
                                         ("h.json", "new"), ("p.txt", "todo")]]),
    ("dewey", r"find messages about (?P<query>\w+)", "dewey_search", {"query": "{query}"},
     [{"query": "milk"}, {"query": "plumber"}],
     [{"query": q} for q in ["eggs", "budget", "alpha", "release", "tuesday"]]),
    ("dewey", r"look up \"(?P<query>[^\"]+)\"", "dewey_search", {"query": "{query}"},
     [{"query": "buy milk"}, {"query": "the plumber"}],
     [{"query": q} for q in ["call me", "free text", "a b c", "release notes", "x"]]),
    ("rogers", r"show the last (?P<limit>\d+) conversations", "rogers_list_conversations", {"limit": "{limit}"},
     [{"limit": "3"}, {"limit": "10"}],
     [{"limit": n} for n in ["1", "2", "5", "20", "7"]]),
    ("rogers", r"open a conversation called (?P<name>\w+)", "rogers_create_conversation", {"name": "{name}"},
     [{"name": "ops"}, {"name": "sales"}],
     [{"name": n} for n in ["design", "hiring", "infra", "support", "launch"]]),
    ("rogers", r"list conversations tagged (?P<tag>\w+)", "rogers_list_conversations", {"tag": "{tag}"},
     [{"tag": "urgent"}, {"tag": "weekly"}],
     [{"tag": t} for t in ["daily", "ops", "q3", "team", "later"]]),
    ("rogers", r"list conversations of (?P<participant>\w+)", "rogers_list_conversations",
     {"participant": "{participant}"},
     [{"participant": "dewey"}, {"participant": "horace"}],
     [{"participant": p} for p in ["human", "rogers", "fiedler", "turing", "hopper"]]),
]
TRAPS = [  # each near a learned phrasing; none may be served by LPPM
    "@Horace please delete gamma into c.txt",                 # a different verb
    "@Horace show me the folder c.txt",                        # a different noun
    "@Horace list the files outside notes/d",                  # a flipped meaning word
    "@Horace please save gamma into c.txt and remove a.txt",   # an extra trailing clause
    "@Horace show me the file c.txt, then delete it",          # an extra clause
    "@Horace what was in a.txt at version five",               # a word where a number goes
    "@Rogers show the last many conversations",                # a word where a number goes
    "@Dewey find messages about milk and eggs",                # more words than the slot takes
    "@Rogers open a conversation called ops now",              # a trailing word
]


def request(phrasing: str, values: dict[str, str]) -> str:
    """The request a phrasing's regex describes, with these values."""
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], phrasing)
    return text.replace("\\S+", "").replace('\\"', '"')


def expected(arguments: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], value)
        return [fill(v) for v in value]

    return {name: fill(value) for name, value in arguments.items()}


def rules() -> list[dict[str, Any]]:
    found = []
    for mad, phrasing, tool, arguments, _, _ in PHRASINGS:
        found.append({"when": f"^@?(?i:{mad})? *{phrasing}$", "mad": mad,
                      "tool_calls": [{"name": tool, "arguments": arguments}]})
    return found




@asynccontextmanager
async def ecosystem(root: Path, sessions: Path | None = None, min_support: int = 2) -> AsyncIterator[Ecosystem]:
    """Horace, Dewey, Rogers with the oracle as their model, in root; tool calls collected in `eco.events`."""
    script = root / "oracle.jsonl"
    script.write_text("".join(json.dumps(rule) + "\n" for rule in rules()))
    eco = Ecosystem(Config(home=root / "home", provider="scripted", sample_interval=0,
                           environ={"MAD_SCRIPT": str(script), "MAD_MASTER_KEY": KEY},
                           only=["horace", "dewey", "rogers", "fiedler", "turing"], lppm_min_support=min_support))
    eco.events = ListSink(lambda e: e.kind == "tool_call")  # type: ignore[attr-defined]
    eco.hub.add_sink(eco.events)  # type: ignore[attr-defined]
    with record_session(eco, sessions, argv=["test"], command="test"):
        async with eco:
            yield eco


async def ask(eco: Ecosystem, mad: str, text: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Send; the reply's stage figures and the tool calls the MAD made for it."""
    sink: ListSink = eco.events  # type: ignore[attr-defined]
    start = len(sink.events)
    _, replies = await eco.send(f"@{mad.capitalize()} {text}" if not text.startswith("@") else text, timeout=10)
    calls = [(e.payload["tool"], e.payload["arguments"]) for e in sink.events[start:]
             if e.payload.get("caller") == mad]
    return replies[0].data["stage"], calls


async def train(eco: Ecosystem, strict: bool = True) -> list[dict[str, Any]]:
    """Ask each phrasing its training values; the stages that answered (strict: the Imperator twice, then LPPM)."""
    stages = []
    for mad, phrasing, _, _, seen, _ in PHRASINGS:
        for number, values in enumerate(seen):
            stage, _ = await ask(eco, mad, request(phrasing, values))
            stages.append(stage)
            if strict and stage["name"] != ("imperator" if number < 2 else "lppm"):
                raise AssertionError(f"{phrasing} {values}: answered by {stage}")
    return stages
