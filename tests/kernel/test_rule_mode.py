"""The scripted provider's rule mode: rules answer any number of requests, named groups fill the answers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mads.kernel.llm import make_provider
from mads.kernel.llm.base import LLMError, LLMRequest
from mads.kernel.llm.scripted import ScriptedProvider

WRITE_NOTE = {"when": r"(?i)keep a note called (?P<path>\S+) saying (?P<text>.+)", "mad": "horace",
              "tool_calls": [{"name": "horace_write_file", "arguments": {"path": "{path}", "content": "{text}"}}]}
NOTED = {"when": r"(?i)keep a note called (?P<path>\S+)", "mad": "horace", "after_tool": True,
         "text": "Noted in {path}."}


def asked(text: str, mad: str = "horace", after_tool: bool = False) -> LLMRequest:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are Horace."},
                                      {"role": "user", "content": text}]
    if after_tool:
        messages += [{"role": "assistant", "content": "", "tool_calls": []},
                     {"role": "tool", "tool_call_id": "c1", "content": '{"version": 1}'}]
    return LLMRequest(mad, "scripted", messages)


async def test_a_rule_answers_every_matching_request_with_its_named_groups_filled() -> None:
    provider = ScriptedProvider(replies=[WRITE_NOTE, NOTED])
    for path, text in (("a.txt", "hello world"), ("b.md", "buy milk")):
        answer = await provider.complete(asked(f"please keep a note called {path} saying {text}"))
        assert [(c.name, c.arguments) for c in answer.tool_calls] == [
            ("horace_write_file", {"path": path, "content": text})]
        done = await provider.complete(asked(f"please keep a note called {path} saying {text}", after_tool=True))
        assert done.text == f"Noted in {path}." and done.tool_calls == []


async def test_after_a_tool_result_without_an_after_tool_rule_the_answer_is_done() -> None:
    provider = ScriptedProvider(replies=[WRITE_NOTE])
    assert (await provider.complete(asked("keep a note called a saying b", after_tool=True))).text == "done"


async def test_rules_are_tried_in_file_order_and_bound_to_their_mad() -> None:
    provider = ScriptedProvider(replies=[{"when": "list", "mad": "dewey", "text": "dewey lists"},
                                         {"when": "list", "text": "first"}, {"when": "list", "text": "second"}])
    assert (await provider.complete(asked("list them", mad="horace"))).text == "first"
    assert (await provider.complete(asked("list them", mad="dewey"))).text == "dewey lists"


async def test_a_request_no_rule_matches_is_a_clear_error_unless_an_ordered_reply_is_left() -> None:
    provider = ScriptedProvider(replies=[WRITE_NOTE, {"text": "in order"}])
    assert (await provider.complete(asked("sing me a song"))).text == "in order"
    with pytest.raises(LLMError, match="no rule of the script matches 'sing me a song' \\(for horace\\)"):
        await provider.complete(asked("sing me a song"))


@pytest.mark.parametrize("line, problem", [
    ({"when": "(unclosed", "text": "x"}, '"when" is not a regular expression'),
    ({"when": 3, "text": "x"}, '"when" must be a regular expression'),
    ({"when": "x", "after_tool": "yes", "text": "x"}, '"after_tool" must be true or false'),
])
def test_a_bad_rule_is_refused_with_its_line(tmp_path: Path, line: dict[str, Any], problem: str) -> None:
    script = tmp_path / "rules.jsonl"
    script.write_text(json.dumps(WRITE_NOTE) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(LLMError) as caught:
        make_provider("scripted", {"MAD_SCRIPT": str(script)})
    assert str(caught.value).startswith(f"{script}:2: {problem}")


async def test_a_rules_file_drives_the_imperator_through_a_tool_call_and_a_final_text(
        make_ecosystem: Any, tmp_path: Path) -> None:
    script = tmp_path / "rules.jsonl"
    script.write_text("".join(json.dumps(rule) + "\n" for rule in (WRITE_NOTE, NOTED)))
    environ = {"MAD_SCRIPT": str(script), "MAD_MASTER_KEY": "e" * 64}
    async with make_ecosystem(only=["horace", "fiedler", "turing"], environ=environ, provider="scripted") as eco:
        for path, text in (("a.txt", "hello world"), ("b.txt", "second note")):
            _, replies = await eco.send(f"@Horace keep a note called {path} saying {text}", timeout=10)
            assert [r.content for r in replies] == [f"@human #success Noted in {path}."]
            assert (tmp_path / "home" / "files" / path).read_text() == text
        _, (failed,) = await eco.send("@Horace sing me a song", timeout=10)
        assert failed.content.startswith("@human #error ") and "no rule of the script matches '@Horace sing me a song'" in failed.content
        assert not (tmp_path / "home" / "files" / "sing").exists()
