"""Fiedler: the LLM gateway every MAD's Imperator goes through, its parallel sends and its usage accounts."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mads.fiedler import Fiedler
from mads.kernel import MAD, ToolError, tool
from mads.kernel.llm import LLMRequest, LLMResponse, Provider


class Probe(MAD):
    """Takes notes."""

    @tool
    async def note(self, text: str) -> dict:
        """Note down a text."""
        return {"noted": text}


def script(tmp_path: Path, *replies: dict[str, Any]) -> dict[str, str]:
    """An environment whose MAD_SCRIPT holds these replies."""
    path = tmp_path / "script.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in replies))
    return {"MAD_SCRIPT": str(path)}


NOTE_HELLO = ({"mad": "probe", "tool_calls": [{"name": "probe_note", "arguments": {"text": "hello"}}],
               "usage": {"input_tokens": 100, "output_tokens": 10}},
              {"mad": "probe", "text": "Noted: hello.", "usage": {"input_tokens": 120, "output_tokens": 5}})


async def test_with_the_scripted_provider_prose_makes_the_imperator_call_a_tool_and_answer(
        make_ecosystem, tmp_path: Path) -> None:
    async with make_ecosystem([Fiedler, Probe], provider="scripted", environ=script(tmp_path, *NOTE_HELLO)) as eco:
        _, replies = await eco.send("@Probe please note that hello")
        assert replies[0].content == "@human #success Noted: hello."
        stage = replies[0].data["stage"]
        assert (stage["name"], stage["llm_calls"], stage["tool_calls"]) == ("imperator", 2, ["probe_note"])
        assert [e.payload["result"] for e in eco.events.of("tool_result")] == [{"noted": "hello"}]
        calls = [e.payload for e in eco.events.of("llm_call")]
        prompt = calls[0].pop("prompt")
        tokens = calls[0].pop("context_tokens")
        assert calls[0] == {"caller": "probe", "model": "scripted", "messages": 2, "tools": ["probe_note"], "call": 1}
        assert tokens == sum(max(1, len(m["content"]) // 4) for m in prompt)  # what the model was sent
        assert [m["role"] for m in prompt] == ["system", "user"] and prompt[1]["content"].startswith("@Probe")
        assert calls[1]["messages"] == 4
        result = eco.events.of("llm_result")[0].payload
        assert (result["ok"], result["input_tokens"], result["output_tokens"]) == (True, 100, 10)
        assert [c["name"] for c in result["tool_calls"]] == ["probe_note"] and result["latency_ms"] >= 0


async def test_with_the_offline_provider_prose_is_answered_with_how_to_configure(make_ecosystem) -> None:
    async with make_ecosystem([Fiedler, Probe]) as eco:
        _, replies = await eco.send("@Probe what is up?")
        assert "--provider" in replies[0].content and "OPENAI_API_KEY" in replies[0].content
        assert await eco.call_tool("fiedler_list_models") == {
            "provider": "offline", "models": ["offline"], "default": "offline"}


async def test_usage_is_recorded_and_summed_per_mad_and_model(make_ecosystem, tmp_path: Path) -> None:
    environ = script(tmp_path, *NOTE_HELLO, {"mad": "fiedler", "text": "a", "usage": {"input_tokens": 7,
                                                                                       "output_tokens": 3}})
    async with make_ecosystem([Fiedler, Probe], provider="scripted", environ=environ) as eco:
        await eco.send("@Probe please note that hello")
        await eco.call_tool("fiedler_send", {"prompt": "hi", "models": ["m1"]})
        usage = await eco.call_tool("fiedler_get_usage")
        rows = {(r["mad"], r["model"]): r for r in usage["rows"]}
        assert set(rows) == {("probe", "scripted"), ("fiedler", "m1")}
        probe = rows["probe", "scripted"]
        assert (probe["calls"], probe["input_tokens"], probe["output_tokens"], probe["errors"]) == (2, 220, 15, 0)
        assert probe["mean_latency_ms"] >= 0
        totals = usage["totals"]
        assert (totals["calls"], totals["input_tokens"], totals["output_tokens"]) == (3, 227, 18)
        only_probe = await eco.call_tool("fiedler_get_usage", {"mad": "Probe"})
        assert only_probe["totals"]["calls"] == 2 and len(only_probe["rows"]) == 1
        only_m1 = await eco.call_tool("fiedler_get_usage", {"model": "m1"})
        assert only_m1["totals"]["input_tokens"] == 7
        later = await eco.call_tool("fiedler_get_usage", {"since": time.time() + 60})
        assert later["totals"]["calls"] == 0 and later["rows"] == []
        iso = await eco.call_tool("fiedler_get_usage", {"since": "2000-01-01T00:00:00"})
        assert iso["totals"]["calls"] == 3
    async with make_ecosystem([Fiedler, Probe], provider="scripted", environ=environ) as eco:
        assert (await eco.call_tool("fiedler_get_usage"))["totals"]["calls"] == 3


async def test_usage_since_must_be_a_time(make_ecosystem) -> None:
    async with make_ecosystem([Fiedler]) as eco:
        with pytest.raises(ToolError, match="since: expected epoch seconds or an ISO 8601 time"):
            await eco.call_tool("fiedler_get_usage", {"since": "yesterday-ish"})


async def test_send_returns_the_answer_of_every_model(make_ecosystem, tmp_path: Path) -> None:
    environ = script(tmp_path, {"text": "first answer"}, {"text": "second answer"})
    async with make_ecosystem([Fiedler], provider="scripted", environ=environ) as eco:
        answers = await eco.call_tool("fiedler_send", {"prompt": "compare", "models": ["alpha", "beta"]})
        assert [(a["model"], a["text"], a["error"]) for a in answers] == [
            ("alpha", "first answer", None), ("beta", "second answer", None)]
        assert all(a["input_tokens"] > 0 and a["latency_ms"] >= 0 for a in answers)
        assert [e.payload["model"] for e in eco.events.of("llm_call")] == ["alpha", "beta"]


class Gate(Provider):
    """Answers only once two requests are waiting at the same time."""

    name = "gate"

    def __init__(self) -> None:
        self.barrier = asyncio.Barrier(2)

    def models(self) -> list[str]:
        return ["gate"]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await asyncio.wait_for(self.barrier.wait(), 2)
        return LLMResponse(text=f"from {request.model}", model=request.model)


async def test_send_asks_the_models_in_parallel(make_ecosystem) -> None:
    async with make_ecosystem([Fiedler]) as eco:
        eco.services["llm"]._provider = Gate()
        answers = await eco.call_tool("fiedler_send", {"prompt": "go", "models": ["a", "b"]})
        assert [(a["text"], a["error"]) for a in answers] == [("from a", None), ("from b", None)]


async def test_one_failing_model_does_not_fail_the_others(make_ecosystem, tmp_path: Path) -> None:
    async with make_ecosystem([Fiedler], provider="scripted", environ=script(tmp_path, {"text": "ok"})) as eco:
        first, second = await eco.call_tool("fiedler_send", {"prompt": "go", "models": ["a", "b"]})
        assert (first["text"], first["error"]) == ("ok", None)
        assert second["text"] == "" and "no reply left" in second["error"]
        usage = await eco.call_tool("fiedler_get_usage")
        assert (usage["totals"]["calls"], usage["totals"]["errors"]) == (2, 1)
        failed = eco.events.of("llm_result")[1].payload
        assert failed["ok"] is False and "no reply left" in failed["error"]


async def test_send_appends_files_from_the_files_folder(make_ecosystem, tmp_path: Path) -> None:
    async with make_ecosystem([Fiedler], provider="scripted", environ=script(tmp_path, {"text": "read"})) as eco:
        (eco.config.home / "files" / "notes").mkdir(parents=True)
        (eco.config.home / "files" / "notes" / "a.txt").write_text("the budget is 12")
        calls: list[list[dict[str, Any]]] = []
        gateway = eco.services["llm"]
        complete = gateway._provider.complete

        async def spy(request: LLMRequest) -> LLMResponse:
            calls.append(request.messages)
            return await complete(request)

        gateway._provider.complete = spy
        [answer] = await eco.call_tool("fiedler_send", {"prompt": "summarise", "models": ["m"],
                                                        "files": ["notes/a.txt"]})
        assert answer["text"] == "read"
        assert calls[0][0]["content"] == "summarise\n\n--- notes/a.txt ---\nthe budget is 12"


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/hostname", "notes/../../outside.txt"])
async def test_send_refuses_a_file_path_escaping_the_files_folder(make_ecosystem, path: str) -> None:
    async with make_ecosystem([Fiedler]) as eco:
        (eco.config.home / "outside.txt").write_text("secret plans")
        with pytest.raises(ToolError, match="outside the files folder"):
            await eco.call_tool("fiedler_send", {"prompt": "p", "files": [path]})


async def test_send_refuses_a_missing_file(make_ecosystem) -> None:
    async with make_ecosystem([Fiedler]) as eco:
        with pytest.raises(ToolError, match="no such file"):
            await eco.call_tool("fiedler_send", {"prompt": "p", "files": ["nope.txt"]})


async def test_set_models_persists_across_restart_and_picks_the_default(make_ecosystem, tmp_path: Path) -> None:
    environ = script(tmp_path, {"text": "one"}, {"text": "two"})
    async with make_ecosystem([Fiedler, Probe], provider="scripted", environ=environ) as eco:
        assert await eco.call_tool("fiedler_set_models", {"models": ["big", "small", "big"]}) == {
            "models": ["big", "small"], "default": "big"}
        with pytest.raises(ToolError, match="at least one model"):
            await eco.call_tool("fiedler_set_models", {"models": [" "]})
    async with make_ecosystem([Fiedler, Probe], provider="scripted", environ=environ) as eco:
        assert await eco.call_tool("fiedler_list_models") == {  # (and what the provider itself serves)
            "provider": "scripted", "models": ["big", "small"], "default": "big", "served": ["scripted"]}
        await eco.send("@Probe hello there")
        assert eco.events.of("llm_call")[0].payload["model"] == "big"
        answers = await eco.call_tool("fiedler_send", {"prompt": "hi"})
        assert [a["model"] for a in answers] == ["big", "small"]


async def test_a_provider_that_fails_to_build_leaves_the_ecosystem_running(make_ecosystem, caplog) -> None:
    async with make_ecosystem([Fiedler, Probe], provider="openai", environ={}) as eco:
        [warning] = [r for r in caplog.records if r.name == "mads.fiedler"]
        assert warning.levelname == "WARNING" and "\n" not in warning.getMessage()
        _, replies = await eco.send("@Probe note text=hi")
        assert (replies[0].data["ok"], replies[0].data["result"]) == (True, {"noted": "hi"})
        _, replies = await eco.send("@Probe please note that hello")
        assert replies[0].data["ok"] is False
        assert "\n" not in replies[0].content
        assert "OPENAI_API_KEY" in replies[0].content and "#error" in replies[0].content
        models = await eco.call_tool("fiedler_list_models")
        assert models["provider"] == "openai" and "OPENAI_API_KEY" in models["error"]
        answers = await eco.call_tool("fiedler_send", {"prompt": "hi", "models": ["m"]})
        assert "OPENAI_API_KEY" in answers[0]["error"]
        assert (await eco.call_tool("fiedler_get_usage"))["totals"]["errors"] == 2
