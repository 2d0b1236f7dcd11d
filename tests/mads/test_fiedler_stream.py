"""Fiedler with a real model server (the fake one, on loopback): streamed replies, cancel, faults, model lists.

Each test runs Fiedler and Horace in one ecosystem whose `openai` (or `anthropic`) provider talks to a
FakeLLMServer; prose to @Horace goes to Horace's Imperator, hence to the server.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mcp import Client

import mads.fiedler
from mads.kernel.gateway import Gateway
from mads.kernel.llm.fake_server import FakeLLMServer, Reply, closed_port_url
from tests.helpers import wait_for

pytest.importorskip("openai")


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


def openai_env(url: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": url, "MAD_MODEL": "fake-small"}


def reply_text(reply) -> str:
    return reply.content.split(" ", 1)[1] if " " in reply.content else reply.content


async def test_a_streamed_reply_is_journalled_chunk_by_chunk_with_its_timing(make_ecosystem, server) -> None:
    server.replies = [Reply(chunks=["Hel", "lo the", "re, hu", "man"], delay=0.02)]
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(server.base_url)) as eco:
        _, replies = await eco.send("@Horace hello there")
    assert replies[0].content == "@human #success Hello there, human"
    chunks = [e.payload for e in eco.events.of("llm_chunk")]
    assert [c["text"] for c in chunks] == ["Hel", "lo the", "re, hu", "man"]
    assert [c["n"] for c in chunks] == [1, 2, 3, 4] and {c["caller"] for c in chunks} == {"horace"}
    (call,) = eco.events.of("llm_call")
    (result,) = eco.events.of("llm_result")
    assert call.payload["call"] == result.payload["call"] == chunks[0]["call"]
    figures = result.payload
    assert figures["ok"] and figures["text"] == "Hello there, human" and figures["chunks"] == 4
    assert 0 < figures["first_token_ms"] < figures["latency_ms"] and figures["tokens_per_s"] > 0


async def test_cancel_closes_the_request_and_the_caller_gets_error_cancelled(make_ecosystem, server) -> None:
    server.replies = [Reply(first_delay=6)]
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(server.base_url)) as eco:
        sending = asyncio.ensure_future(eco.send("@Horace hello there"))
        await wait_for(lambda: bool(eco.status().get("llm_in_flight")) and len(server.requests) >= 1,
                       what="the call in flight, its request at the server")
        (flight,) = eco.status()["llm_in_flight"]
        assert (flight["mad"], flight["model"]) == ("horace", "fake-small")
        async with Client(Gateway(eco)) as client:  # what the workbench's Esc calls
            cancelled = (await client.call_tool("mad_cancel", {"mad": "horace"})).structured_content
        assert [c["mad"] for c in cancelled["cancelled"]] == ["horace"]
        _, replies = await sending
        assert replies[0].content == "@human #error cancelled"
        assert await asyncio.to_thread(server.wait_until, lambda s: s.disconnects >= 1, 5)
        (cancelled,) = eco.events.of("llm_cancelled")
        assert cancelled.payload["caller"] == "horace" and cancelled.payload["elapsed_ms"] < 6000
        assert eco.status()["llm_in_flight"] == []
        assert eco.cancel_llm()["cancelled"] == []  # nothing left to cancel
        with pytest.raises(Exception, match="no MAD named 'nobody'"):
            eco.cancel_llm("nobody")


FAULTS = [
    ("401", Reply(fault="401"), "openai: 401 unauthorized at {url}: check OPENAI_API_KEY"),
    ("404", Reply(fault="404"), "openai: model 'fake-small' not found at {url} (404)"),
    ("context", Reply(fault="context"), "openai: the prompt is too long for model 'fake-small'"),
    ("cut", Reply(fault="cut", delay=0.01), "openai: the stream was cut after"),
    ("500-every-time", Reply(fault="500", retry_after=0.01, times=10), "openai: server error 500"),
]


@pytest.mark.parametrize(("fault", "reply", "said"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_each_provider_fault_is_a_one_line_error_reply_and_the_ecosystem_keeps_serving(
        make_ecosystem, server, fault: str, reply: Reply, said: str) -> None:
    server.replies = [reply, Reply("fine again")]
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(server.base_url)) as eco:
        _, replies = await eco.send("@Horace hello there")
        text = replies[0].content
        assert text.startswith("@human #error the language model could not answer: ") and "\n" not in text
        assert said.format(url=server.base_url) in text
        (result,) = eco.events.of("llm_result")
        assert result.payload["ok"] is False and said.format(url=server.base_url) in result.payload["error"]
        if fault == "500-every-time":  # retried with the server's wait, then given up on
            assert [e.payload["attempt"] for e in eco.events.of("llm_retry")] == [2, 3, 4]
            assert "(gave up after 4 tries)" in text
            server.replies = [Reply("fine again")]
        _, replies = await eco.send("@Horace and now?")
        assert replies[0].content == "@human #success fine again"


async def test_connection_refused_is_one_line(make_ecosystem) -> None:
    url = closed_port_url()
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(url)) as eco:
        _, replies = await eco.send("@Horace hello there")
    assert f"openai: cannot reach {url}" in replies[0].content and "\n" not in replies[0].content


@pytest.mark.parametrize("fault", ["429", "503"])
async def test_a_refusal_for_now_is_retried_after_the_wait_and_answered(make_ecosystem, server, fault: str,
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(mads.fiedler, "BACKOFF_S", 0.01)  # a 503 without retry-after backs off from this
    server.replies = [Reply(fault=fault, retry_after=0.2 if fault == "429" else None, times=2), Reply("at last")]
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(server.base_url)) as eco:
        _, replies = await eco.send("@Horace hello there")
    assert replies[0].content == "@human #success at last"
    retries = [e.payload for e in eco.events.of("llm_retry")]
    assert [r["attempt"] for r in retries] == [2, 3]
    if fault == "429":
        assert [r["wait_s"] for r in retries] == [0.2, 0.2] and "rate limited (429)" in retries[0]["error"]
    else:
        assert [r["wait_s"] for r in retries] == [0.01, 0.02]
    assert eco.events.of("llm_result")[0].payload["retries"] == 2


async def test_a_malformed_tool_call_is_asked_again_once_with_the_error_then_reported(make_ecosystem, server) -> None:
    bad = Reply("", tool_calls=[("horace_list_files", '{"prefix": "a" "b"}')])
    server.replies = [bad, Reply("", tool_calls=[("horace_list_files", "{}")]), Reply("no files yet")]
    async with make_ecosystem(only=["fiedler", "horace"], provider="openai", environ=openai_env(server.base_url)) as eco:
        _, replies = await eco.send("@Horace which files do you keep?")
        assert replies[0].content == "@human #success no files yet"
        second = [r for r in server.requests if r.path.endswith("/chat/completions")][1].body
        assert "not valid JSON" in second["messages"][-1]["content"]
        server.replies = [bad]
        _, replies = await eco.send("@Horace which files again?")
        assert replies[0].content.startswith("@human #error the model's call of horace_list_files was not valid JSON")


async def test_list_models_asks_the_server_and_falls_back_with_a_note(make_ecosystem, server) -> None:
    async with make_ecosystem(only=["fiedler"], provider="openai", environ=openai_env(server.base_url)) as eco:
        listed = await eco.call_tool("fiedler_list_models")
    assert listed["models"] == ["fake-small", "fake-large"] and listed["default"] == "fake-small"
    async with make_ecosystem(only=["fiedler"], provider="openai", environ=openai_env(closed_port_url())) as eco:
        listed = await eco.call_tool("fiedler_list_models")
    assert listed["models"] == ["fake-small"] and "could not list its models" in listed["note"]


async def test_anthropic_streams_and_lists_its_models(make_ecosystem, server) -> None:
    pytest.importorskip("anthropic")
    server.replies = [Reply(chunks=["Hello ", "from ", "Claude"], delay=0.01)]
    environ = {"ANTHROPIC_BASE_URL": server.anthropic_url, "ANTHROPIC_API_KEY": "test-key", "MAD_MODEL": "fake-small"}
    async with make_ecosystem(only=["fiedler", "horace"], provider="anthropic", environ=environ) as eco:
        _, replies = await eco.send("@Horace hello there")
        listed = await eco.call_tool("fiedler_list_models")
    assert replies[0].content == "@human #success Hello from Claude"
    assert [e.payload["text"] for e in eco.events.of("llm_chunk")] == ["Hello ", "from ", "Claude"]
    assert listed["models"] == ["fake-small", "fake-large"]
