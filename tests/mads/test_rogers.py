"""Rogers keeps every conversation and message, and they outlive the process."""
from __future__ import annotations

import pytest

from mads.kernel import MAD, ToolError, tool
from mads.rogers import Rogers


class Echo(MAD):
    """Says back what it is told."""

    @tool
    def say(self, text: str) -> str:
        """Say the text back."""
        return text


async def test_created_conversation_is_on_the_bus_and_can_be_fetched(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        conv = await eco.call_tool("rogers_create_conversation",
                                   {"name": "design", "participants": ["Alice", "rogers"], "tags": ["#plan"]})
        assert conv["name"] == "design" and conv["participants"] == ["alice", "rogers"]
        assert conv["tags"] == ["plan"] and conv["messages"] == 0
        assert (await eco.bus.get_conversation(conv["id"])).name == "design"
        got = await eco.call_tool("rogers_get_conversation", {"conversation_id": conv["id"]})
        assert got == conv


async def test_list_is_newest_first_and_filters_by_participant_and_tag(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        first = await eco.call_tool("rogers_create_conversation", {"name": "one", "participants": ["alice"]})
        second = await eco.call_tool("rogers_create_conversation", {"name": "two", "tags": ["review"]})
        listed = await eco.call_tool("rogers_list_conversations", {})
        ids = [c["id"] for c in listed]
        assert ids.index(second["id"]) < ids.index(first["id"])
        assert "main" in ids
        by_alice = await eco.call_tool("rogers_list_conversations", {"participant": "@Alice"})
        assert [c["id"] for c in by_alice] == [first["id"]]
        tagged = await eco.call_tool("rogers_list_conversations", {"tag": "#review"})
        assert [c["id"] for c in tagged] == [second["id"]]
        assert len(await eco.call_tool("rogers_list_conversations", {"limit": 1})) == 1


async def test_join_and_leave_change_the_bus_and_the_record(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        conv = await eco.call_tool("rogers_create_conversation", {"name": "c", "participants": ["alice"]})
        joined = await eco.call_tool("rogers_join_conversation", {"conversation_id": conv["id"], "participant": "Bob"})
        assert joined["participants"] == ["alice", "bob"]
        assert (await eco.bus.get_conversation(conv["id"])).participants == ["alice", "bob"]
        left = await eco.call_tool("rogers_leave_conversation", {"conversation_id": conv["id"], "participant": "alice"})
        assert left["participants"] == ["bob"]
        assert (await eco.bus.get_conversation(conv["id"])).participants == ["bob"]
        listed = await eco.call_tool("rogers_list_conversations", {"participant": "alice"})
        assert conv["id"] not in [c["id"] for c in listed]


async def test_sent_messages_come_back_in_order(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        conv = await eco.call_tool("rogers_create_conversation", {"name": "c", "participants": ["alice"]})
        sent = await eco.call_tool("rogers_send_message", {"conversation_id": conv["id"], "content": "first #plan"})
        assert sent["message"]["sender"] == "human" and sent["recipients"] == []
        await eco.call_tool("rogers_send_message",
                            {"conversation_id": conv["id"], "content": "second", "sender": "alice"})
        page = await eco.call_tool("rogers_get_messages", {"conversation_id": conv["id"]})
        assert [(m["seq"], m["sender"], m["content"]) for m in page["messages"]] == [
            (1, "human", "first #plan"), (2, "alice", "second")]
        assert page["messages"][0]["tags"] == ["plan"] and page["messages"][0]["id"] == sent["message"]["id"]
        assert page["total"] == 2
        rest = await eco.call_tool("rogers_get_messages", {"conversation_id": conv["id"], "offset": 1, "limit": 5})
        assert [m["content"] for m in rest["messages"]] == ["second"]


async def test_send_message_reaches_mentioned_mads(make_ecosystem) -> None:
    async with make_ecosystem([Rogers, Echo]) as eco:
        sent = await eco.call_tool("rogers_send_message", {"conversation_id": "main", "content": "@Echo say text=hi"})
        assert sent["recipients"] == ["echo"]


async def test_send_message_refuses_to_speak_for_another_mad(make_ecosystem) -> None:
    async with make_ecosystem([Rogers, Echo]) as eco:
        with pytest.raises(ToolError, match="cannot send as @echo"):
            await eco.call_tool("rogers_send_message", {"conversation_id": "main", "content": "x", "sender": "echo"})


async def test_bus_traffic_is_stored_once_with_rogers_own_replies(make_ecosystem) -> None:
    async with make_ecosystem([Rogers, Echo]) as eco:
        _, replies = await eco.send("@Echo say text=hello")
        assert replies[0].sender == "echo"
        _, replies = await eco.send("@Rogers get_stats")
        assert replies[0].data["ok"] is True
        page = await eco.call_tool("rogers_get_messages", {"conversation_id": "main"})
        assert [(m["sender"], m["kind"]) for m in page["messages"]] == [
            ("human", "deterministic"), ("echo", "prose"), ("human", "deterministic"), ("rogers", "prose")]
        assert page["messages"][1]["reply_to"] == page["messages"][0]["id"]
        assert len({m["id"] for m in page["messages"]}) == 4
        stats = await eco.call_tool("rogers_get_stats", {})
        assert stats["messages"] == 4
        assert stats["messages_per_sender"] == {"human": 2, "echo": 1, "rogers": 1}
        assert stats["bus"]["published"] == 4


async def test_conversation_created_by_one_process_is_listed_by_the_next(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        conv = await eco.call_tool("rogers_create_conversation", {"name": "kept", "participants": ["alice"]})
        await eco.call_tool("rogers_send_message", {"conversation_id": conv["id"], "content": "remember me"})
    async with make_ecosystem([Rogers]) as eco:
        listed = await eco.call_tool("rogers_list_conversations", {})
        assert conv["id"] in [c["id"] for c in listed]
        again = await eco.bus.get_conversation(conv["id"])
        assert (again.name, again.participants, again.created) == ("kept", ["alice", "human"], conv["created"])
        page = await eco.call_tool("rogers_get_messages", {"conversation_id": conv["id"]})
        assert [m["content"] for m in page["messages"]] == ["remember me"]
        await eco.call_tool("rogers_send_message", {"conversation_id": conv["id"], "content": "still here"})
        page = await eco.call_tool("rogers_get_messages", {"conversation_id": conv["id"]})
        assert [m["seq"] for m in page["messages"]] == [1, 2]


@pytest.mark.parametrize(("tool_name", "args"), [
    ("rogers_get_conversation", {}),
    ("rogers_get_messages", {}),
    ("rogers_send_message", {"content": "x"}),
    ("rogers_join_conversation", {"participant": "bob"}),
    ("rogers_leave_conversation", {"participant": "bob"}),
])
async def test_unknown_conversation_is_a_one_line_tool_error(make_ecosystem, tool_name, args) -> None:
    async with make_ecosystem([Rogers]) as eco:
        with pytest.raises(ToolError) as caught:
            await eco.call_tool(tool_name, {"conversation_id": "nope", **args})
        assert str(caught.value) == "unknown conversation 'nope'"
        assert not [e for e in eco.events.events if e.kind == "crash"]


async def test_bad_participant_and_page_are_refused(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        with pytest.raises(ToolError, match="participant must be a handle"):
            await eco.call_tool("rogers_join_conversation", {"conversation_id": "main", "participant": "a b"})
        with pytest.raises(ToolError, match="limit must be between"):
            await eco.call_tool("rogers_get_messages", {"conversation_id": "main", "limit": 0})


async def test_connections_list_rogers_as_healthy(make_ecosystem) -> None:
    async with make_ecosystem([Rogers]) as eco:
        rows = await eco.call_tool("rogers_get_connections", {})
        rogers = next(r for r in rows if r["participant"] == "rogers")
        assert rogers["liveness"] == "HEALTHY" and rogers["kind"] == "mad"
