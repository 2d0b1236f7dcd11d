"""CET: the Imperator's context holds what the request needs from a long conversation, at a fraction of it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mads.kernel import ListSink
from mads.kernel.cognition.cet import CET, shrink
from mads.kernel.llm.base import estimate_tokens

FACT = "For the record: the wifi password of the lab is kumquat-42."


async def test_a_fact_from_message_17_of_200_reaches_the_model_in_half_the_tokens_or_less(
        make_ecosystem: Any, tmp_path: Path) -> None:
    script = tmp_path / "rules.jsonl"
    script.write_text(json.dumps({"when": "(?i)wifi password", "mad": "horace", "text": "It is kumquat-42."}) + "\n")
    environ = {"MAD_SCRIPT": str(script), "MAD_MASTER_KEY": "c" * 64}
    async with make_ecosystem(only=["horace", "rogers", "dewey", "fiedler", "turing"], environ=environ,
                              provider="scripted") as eco:
        sink = ListSink(lambda e: e.kind == "llm_call")
        eco.hub.add_sink(sink)
        made = await eco.call_tool("rogers_create_conversation", {"name": "lab", "participants": ["human", "horace"]})
        conversation = made["id"]
        for number in range(1, 201):
            text = FACT if number == 17 else f"Status note {number}: the build on runner {number % 7} passed in " \
                                               f"{30 + number % 11} minutes, nothing else to report today."
            await eco.send(text, conversation=conversation)
        await eco.settle()
        _, (answer,) = await eco.send("@Horace what is the wifi password of the lab?", conversation=conversation,
                                      timeout=10)
        assert answer.content.endswith("It is kumquat-42.")
        (call,) = sink.events
        prompt = call.payload["prompt"]
        sent = "\n".join(m["content"] for m in prompt)
        assert FACT in sent  # retrieved from far back in the conversation
        whole = await eco.call_tool("rogers_get_messages", {"conversation_id": conversation, "limit": 500})
        history = "\n".join(shrink(m) for m in whole["messages"])
        whole_tokens = estimate_tokens(prompt[0]["content"]) + estimate_tokens(history)
        assert call.payload["context_tokens"] == sum(estimate_tokens(m["content"]) for m in prompt)
        ratio = call.payload["context_tokens"] / whole_tokens
        print(f"cet: {call.payload['context_tokens']} tokens of {whole_tokens} ({ratio:.2f}), fact recalled")
        assert ratio <= 0.5


def test_a_long_tool_result_is_shrunk_to_a_one_line_reference() -> None:
    long = {"id": "01J", "sender": "horace", "content": "line one\n" + "x" * 5000}
    assert shrink(long) == "horace: line one … [message 01J, 5009 characters]"
    assert shrink({"id": "01K", "sender": "human", "content": "short"}) == "human: short"


def test_only_the_relevant_tools_are_offered_when_there_are_many() -> None:
    tools = [{"name": f"x_tool{i}", "description": f"does thing {i}"} for i in range(10)]
    tools.append({"name": "x_search", "description": "full text search over the archive"})

    class Turned:
        class message:  # noqa: N801 - a stand-in for Message
            content = "search the archive for budget"

    assert [t["name"] for t in CET().tools(Turned, tools)] == ["x_search"]  # type: ignore[arg-type]
    assert CET().tools(Turned, tools[:3]) == tools[:3]  # type: ignore[arg-type]
