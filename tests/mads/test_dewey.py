"""Dewey indexes every message for ranked search, writes transcripts, and exports and imports them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mads.dewey import Dewey
from mads.kernel import MAD, Config, Ecosystem, Message, ToolError, tool


class Echo(MAD):
    """Says back what it is told."""

    @tool
    def say(self, text: str) -> str:
        """Say the text back."""
        return text


async def publish(eco: Ecosystem, content: str, sender: str = "alice", conversation: str = "main",
                  created: float | None = None) -> Message:
    """Put a message on the bus as if a participant had said it."""
    message = Message.create(conversation, sender, content)
    if created is not None:
        message.created = created
    await eco.publish(message)
    return message


async def search(eco: Ecosystem, **args: object) -> dict:
    return await eco.call_tool("dewey_search", args)


async def test_search_ranks_the_message_with_more_occurrences_first(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        once = await publish(eco, "hello there, general remarks about the weather and other things")
        thrice = await publish(eco, "hello hello hello world")
        await publish(eco, "nothing to see")
        found = await search(eco, query="hello")
        assert found["query"] == "hello" and found["total"] == 2
        assert [h["id"] for h in found["hits"]] == [thrice.id, once.id]
        assert found["hits"][0]["rank"] < found["hits"][1]["rank"]
        assert "[hello]" in found["hits"][0]["snippet"]
        assert set(found["hits"][0]) == {"id", "conversation", "sender", "created", "snippet", "rank"}
        page = await search(eco, query="hello", limit=1, offset=1)
        assert [h["id"] for h in page["hits"]] == [once.id] and page["total"] == 2


async def test_search_filters_by_sender_conversation_and_time(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        await eco.bus.create_conversation("other", ["bob"], conversation_id="other")
        early = await publish(eco, "deploy plan", created=1000.0)
        middle = await publish(eco, "deploy now", sender="bob", created=2000.0)
        late = await publish(eco, "deploy done", sender="bob", conversation="other", created=3000.0)

        async def ids(**args: object) -> list[str]:
            return sorted(h["id"] for h in (await search(eco, query="deploy", **args))["hits"])

        assert await ids(sender="@Bob") == sorted([middle.id, late.id])
        assert await ids(conversation_id="other") == [late.id]
        assert await ids(since="1970-01-01T00:25:00Z") == sorted([middle.id, late.id])
        assert await ids(since="1500", until=2500) == [middle.id]
        assert await ids(until="1970-01-01T00:20:00") == [early.id]
        with pytest.raises(ToolError, match="since: expected an ISO-8601 time or epoch seconds"):
            await search(eco, query="deploy", since="yesterday-ish")
        with pytest.raises(ToolError, match="since is after until"):
            await search(eco, query="deploy", since=3000, until=1000)


async def test_a_search_command_is_answered_by_the_dtr_without_an_llm(make_ecosystem) -> None:
    async with make_ecosystem([Dewey, Echo]) as eco:
        await eco.send("@Echo say text=hello")
        msg, replies = await eco.send("@Dewey search query=hello")
        data = replies[0].data
        assert data["stage"]["name"] == "dtr" and data["stage"]["llm_calls"] == 0
        hits = data["result"]["hits"]
        assert hits and {"human", "echo"} <= {h["sender"] for h in hits}
        assert msg.id in {h["id"] for h in hits}


async def test_dewey_keeps_its_answers_in_transcripts_but_not_in_searches(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        _, replies = await eco.send("@Dewey search query=hello")
        transcript = await eco.call_tool("dewey_get_transcript", {"conversation_id": "main", "format": "json"})
        assert [m["sender"] for m in transcript["messages"]] == ["human", "dewey"]
        assert {h["sender"] for h in (await search(eco, query="hello"))["hits"]} == {"human"}
        mine = await search(eco, query="hello", sender="dewey")
        assert [h["id"] for h in mine["hits"]] == [replies[0].id]


async def test_a_message_is_indexed_once(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        message = await publish(eco, "unique words")
        await eco.publish(message)
        assert (await search(eco, query="unique"))["total"] == 1


@pytest.mark.parametrize("query", ['"hello', "alice:hello", "hello)", '(alice "hello'])
async def test_a_malformed_query_falls_back_to_plain_words(make_ecosystem, query) -> None:
    async with make_ecosystem([Dewey]) as eco:
        message = await publish(eco, "hello alice")
        found = await search(eco, query=query)
        assert [h["id"] for h in found["hits"]] == [message.id]
        assert not [e for e in eco.events.events if e.kind == "crash"]


async def test_a_dangling_operator_is_searched_as_a_word(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        message = await publish(eco, "hello and goodbye")
        found = await search(eco, query="hello AND")
        assert [h["id"] for h in found["hits"]] == [message.id]


async def test_a_query_without_words_is_a_tool_error(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        with pytest.raises(ToolError, match="nothing to search for"):
            await search(eco, query="((")


async def test_transcripts_come_as_markdown_text_or_json(make_ecosystem) -> None:
    async with make_ecosystem([Dewey]) as eco:
        await publish(eco, "first line", created=0.0)
        await publish(eco, "second\nline two", sender="bob", created=60.0)
        markdown = await eco.call_tool("dewey_get_transcript", {"conversation_id": "main"})
        assert markdown.startswith("# main\n")
        assert "### @alice · 1970-01-01 00:00:00 UTC\n\nfirst line" in markdown
        assert markdown.index("@alice ·") < markdown.index("@bob ·")
        text = await eco.call_tool("dewey_get_transcript", {"conversation_id": "main", "format": "text"})
        assert "[1970-01-01 00:01:00 UTC] bob: second\n    line two" in text
        data = await eco.call_tool("dewey_get_transcript", {"conversation_id": "main", "format": "json"})
        assert data["conversation"]["id"] == "main"
        assert [m["content"] for m in data["messages"]] == ["first line", "second\nline two"]
        with pytest.raises(ToolError, match="unknown conversation 'nope'"):
            await eco.call_tool("dewey_get_transcript", {"conversation_id": "nope"})


async def test_export_then_import_round_trips_into_a_fresh_home(make_ecosystem, tmp_path: Path) -> None:
    async with make_ecosystem([Dewey]) as eco:
        await publish(eco, "kept across homes", created=10.0)
        await publish(eco, "and this reply too", sender="bob", created=20.0)
        exported = await eco.call_tool("dewey_export", {"conversation_id": "main", "path": "out/main.json"})
        assert exported["messages"] == 2 and exported["format"] == "json"
        md = await eco.call_tool("dewey_export", {"conversation_id": "main", "path": "out/main.md"})
        assert md["format"] == "md"
        assert (tmp_path / "home/files/out/main.md").read_text().startswith("# main")
        original = await eco.call_tool("dewey_get_transcript", {"conversation_id": "main", "format": "json"})
        with pytest.raises(ToolError, match="unknown conversation"):
            await eco.call_tool("dewey_export", {"conversation_id": "nope", "path": "x.json"})
    fresh_home = tmp_path / "fresh"
    (fresh_home / "files").mkdir(parents=True)
    shutil.copy(tmp_path / "home/files/out/main.json", fresh_home / "files/main.json")
    async with Ecosystem(Config(home=fresh_home, include_package=False, environ={}), mads=[Dewey]) as fresh:
        counts = await fresh.call_tool("dewey_import", {"path": "main.json"})
        assert counts == {"path": "main.json", "conversation_id": "main", "messages": 2, "imported": 2,
                          "skipped": 0}
        again = await fresh.call_tool("dewey_import", {"path": "main.json"})
        assert (again["imported"], again["skipped"]) == (0, 2)
        assert (await search(fresh, query="homes"))["total"] == 1
        copy = await fresh.call_tool("dewey_get_transcript", {"conversation_id": "main", "format": "json"})
        assert copy["messages"] == original["messages"]


@pytest.mark.parametrize(("path", "error"), [
    ("/etc/x.json", "must be relative"),
    ("../x.json", "escapes the files folder"),
    ("a/../../x.json", "escapes the files folder"),
    ("link/x.json", "escapes the files folder"),
    ("notes.txt", "must end in .json or .md"),
])
async def test_export_paths_outside_the_files_folder_are_refused(make_ecosystem, tmp_path: Path, path, error) -> None:
    async with make_ecosystem([Dewey]) as eco:
        (tmp_path / "outside").mkdir()
        (tmp_path / "home/files").mkdir(parents=True, exist_ok=True)
        (tmp_path / "home/files/link").symlink_to(tmp_path / "outside")
        with pytest.raises(ToolError, match=error):
            await eco.call_tool("dewey_export", {"conversation_id": "main", "path": path})
        assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize(("content", "error"), [
    ("not json", "not a JSON file"),
    (json.dumps({"messages": []}), "not a conversation export"),
    (json.dumps({"format": "mad-conversation", "conversation": {"id": "c"}, "messages": [{"id": "x"}]}),
     "message 1 of the export lacks"),
])
async def test_a_broken_import_file_is_a_tool_error(make_ecosystem, tmp_path: Path, content, error) -> None:
    async with make_ecosystem([Dewey]) as eco:
        (tmp_path / "home/files").mkdir(parents=True, exist_ok=True)
        (tmp_path / "home/files/bad.json").write_text(content)
        with pytest.raises(ToolError, match=error):
            await eco.call_tool("dewey_import", {"path": "bad.json"})
        with pytest.raises(ToolError, match="no such file"):
            await eco.call_tool("dewey_import", {"path": "missing.json"})
