"""LPPM on an evaluation set: prose the Imperator resolved is served again with no LLM call, traps never are.

The oracle is the scripted provider in rule mode: each phrasing is a rule whose named groups
fill one tool call of Horace, Dewey or Rogers. Each phrasing is seen 2 or 3 times (the
Imperator answers, LPPM learns), then asked 5 times with new values.
"""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from madtui.rerun import rerun
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
async def ecosystem(root: Path, sessions: Path | None = None) -> AsyncIterator[Ecosystem]:
    script = root / "oracle.jsonl"
    script.write_text("".join(json.dumps(rule) + "\n" for rule in rules()))
    eco = Ecosystem(Config(home=root / "home", provider="scripted", sample_interval=0,
                           environ={"MAD_SCRIPT": str(script), "MAD_MASTER_KEY": KEY},
                           only=["horace", "dewey", "rogers", "fiedler", "turing"]))
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


async def train(eco: Ecosystem) -> None:
    for mad, phrasing, _, _, seen, _ in PHRASINGS:
        for number, values in enumerate(seen):
            stage, _ = await ask(eco, mad, request(phrasing, values))
            assert stage["name"] == ("imperator" if number < 2 else "lppm"), (phrasing, values, stage)


async def test_learned_phrasings_are_served_without_the_llm_with_the_oracles_calls_and_traps_are_not(
        tmp_path: Path) -> None:
    served = total = 0
    wrong: list[Any] = []
    async with ecosystem(tmp_path) as eco:
        await train(eco)
        for mad, phrasing, tool, arguments, _, new in PHRASINGS:
            for values in new:
                total += 1
                stage, calls = await ask(eco, mad, request(phrasing, values))
                if stage["name"] != "lppm":
                    continue
                served += stage["llm_calls"] == 0
                defaults = {k: p.get("default") for k, p in
                            eco.tools()[tool].input_schema.get("properties", {}).items()}
                oracle = [(tool, expected(arguments, values))]
                normalised = [(name, {k: str(v) if isinstance(v, int) else v for k, v in args.items()
                                      if k not in defaults or v != defaults[k]})  # what the tool filled in
                              for name, args in calls]
                if normalised != oracle:
                    wrong.append((request(phrasing, values), calls, oracle))
        false_hits = []
        for trap in TRAPS:
            stage, _ = await ask(eco, trap.split()[0][1:].lower(), trap)
            if stage["name"] == "lppm":
                false_hits.append(trap)
    print(f"lppm: {served}/{total} new requests served with 0 LLM calls; {len(false_hits)} false hits")
    assert not wrong, wrong
    assert served >= 0.8 * total, f"{served} of {total}"
    assert false_hits == []


async def test_learned_templates_survive_a_restart_and_a_rerun_of_the_session_is_the_same(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    mad, phrasing, *_ , seen, new = PHRASINGS[0]
    async with ecosystem(tmp_path, sessions) as eco:
        for values in seen:
            await ask(eco, mad, request(phrasing, values))
        stage, _ = await ask(eco, mad, request(phrasing, new[0]))
        assert stage["name"] == "lppm"
    async with ecosystem(tmp_path) as eco:  # the same MAD_HOME: the templates are in Horace's state
        stage, calls = await ask(eco, mad, request(phrasing, new[1]))
        assert stage["name"] == "lppm" and stage["llm_calls"] == 0
        assert calls == [("horace_write_file", {"path": new[1]["path"], "content": new[1]["content"]})]
    (journal,) = sessions.glob("*.db")
    result = await rerun(journal, sessions=tmp_path / "reruns", mad_path=[])
    assert result.report["same"], json.dumps(result.report["mads"], indent=1)[:3000]


async def test_mad_lppm_lists_and_forgets_the_templates_and_a_forgotten_one_no_longer_serves(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from madtui.cli import cli

    mad, phrasing, *_, seen, new = PHRASINGS[0]
    env = {"MAD_HOME": str(tmp_path / "home")}
    async with ecosystem(tmp_path) as eco:
        for values in seen:
            await ask(eco, mad, request(phrasing, values))
        listed = CliRunner().invoke(cli, ["lppm", "list", "--json"], env=env)
        (template,) = json.loads(listed.stdout)
        assert template["mad"] == "horace" and template["serving"] and template["support"] == 2
        assert template["template"] == "please save {content0:name} into {path0:path}"
        assert template["plan"] == [{"tool": "horace_write_file", "arguments": {"path": {"slot": "path0"},
                                                                                "content": {"slot": "content0"}}}]
        text = CliRunner().invoke(cli, ["lppm", "list"], env=env).stdout
        assert f"{template['id']}  horace   serving support 2" in text
        gone = CliRunner().invoke(cli, ["lppm", "forget", template["id"]], env=env)
        assert gone.exit_code == 0 and gone.stdout.strip() == "forgot 1 template"
        stage, _ = await ask(eco, mad, request(phrasing, new[0]))
        assert stage["name"] == "imperator"
        unknown = CliRunner().invoke(cli, ["lppm", "forget", "nosuch"], env=env)
        assert unknown.exit_code == 2 and "no template 'nosuch'" in unknown.stderr
        assert CliRunner().invoke(cli, ["lppm", "forget"], env=env).exit_code == 2
        assert CliRunner().invoke(cli, ["lppm", "forget", "--mad", "horace"], env=env).exit_code == 0
