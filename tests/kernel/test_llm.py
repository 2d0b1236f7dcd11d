"""The LLM providers: scripted, offline, unknown names, and openai against a local compatible server."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mads.fiedler import Fiedler
from mads.kernel import MAD, tool
from mads.kernel.llm import LLMError, LLMRequest, make_provider
from mads.kernel.llm.offline import OfflineProvider
from mads.kernel.llm.scripted import ScriptedProvider


def chat_completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    """A chat.completion body as an OpenAI-compatible server sends it."""
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


TOOL_CALL = chat_completion({"content": None, "tool_calls": [{
    "id": "call_1", "type": "function",
    "function": {"name": "probe_note", "arguments": json.dumps({"text": "hello"})}}]}, "tool_calls")
ANSWER = chat_completion({"content": "I noted hello."}, "stop")


class FakeOpenAI:
    """A tiny OpenAI-compatible server on 127.0.0.1: serves canned completions, keeps the request bodies."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions" or not fake.replies:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fake.requests.append(body)
                data = json.dumps(fake.replies.pop(0)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def environ(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": f"http://127.0.0.1:{self.server.server_port}/v1", "OPENAI_API_KEY": "test"}


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([TOOL_CALL, ANSWER])
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


class Probe(MAD):
    """Takes notes."""

    @tool
    async def note(self, text: str) -> dict:
        """Note down a text."""
        return {"noted": text}


NOTE_TOOL = {"name": "probe_note", "description": "Note down a text.", "input_schema": {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}


def request(mad: str, text: str = "hi") -> LLMRequest:
    return LLMRequest(mad, "scripted", [{"role": "user", "content": text}])


async def test_scripted_provider_serves_replies_in_order(tmp_path: Path) -> None:
    script = tmp_path / "script.jsonl"
    script.write_text('{"text": "one"}\n\n// a comment\n'
                      '{"tool_calls": [{"name": "probe_note", "arguments": {"text": "x"}}]}\n{"text": "three"}\n')
    provider = make_provider("scripted", {"MAD_SCRIPT": str(script)})
    first, second, third = [await provider.complete(request("probe")) for _ in range(3)]
    assert first.text == "one"
    assert [(c.name, c.arguments) for c in second.tool_calls] == [("probe_note", {"text": "x"})]
    assert third.text == "three"


async def test_scripted_lines_bound_to_a_mad_are_served_only_to_it() -> None:
    provider = ScriptedProvider(replies=[{"mad": "Horace", "text": "for horace"}, {"text": "for anyone"}])
    assert (await provider.complete(request("probe"))).text == "for anyone"
    with pytest.raises(LLMError, match="no reply left for probe"):
        await provider.complete(request("probe"))
    assert (await provider.complete(request("horace"))).text == "for horace"


async def test_scripted_provider_raises_when_the_script_is_exhausted() -> None:
    provider = ScriptedProvider(replies=[{"text": "only"}])
    await provider.complete(request("probe"))
    with pytest.raises(LLMError, match="no reply left for probe \\(served 1\\)"):
        await provider.complete(request("probe"))


@pytest.mark.parametrize(("line", "problem"), [
    ("{not json", "not JSON"),
    ('{"answer": "x"}', 'a reply needs "text" or "tool_calls"'),
    ('{"tool_calls": [{"arguments": {}}]}', '"tool_calls" must be a list'),
])
def test_a_bad_script_line_is_reported_with_its_line_number(tmp_path: Path, line: str, problem: str) -> None:
    script = tmp_path / "script.jsonl"
    script.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(LLMError) as caught:
        make_provider("scripted", {"MAD_SCRIPT": str(script)})
    assert str(caught.value).startswith(f"{script}:2: {problem}")


def test_scripted_provider_without_a_script_says_what_to_set() -> None:
    with pytest.raises(LLMError, match="MAD_SCRIPT"):
        make_provider("scripted", {})


async def test_offline_provider_tells_how_to_configure_a_model() -> None:
    provider = make_provider("offline", {})
    assert isinstance(provider, OfflineProvider)
    text = (await provider.complete(request("probe"))).text
    assert "--provider" in text and "OPENAI_API_KEY" in text


def test_unknown_provider_is_one_line_naming_the_choices() -> None:
    with pytest.raises(LLMError) as caught:
        make_provider("nope", {})
    assert "\n" not in str(caught.value)
    assert "'nope'" in str(caught.value) and "offline, scripted, openai, anthropic" in str(caught.value)


def test_openai_provider_without_a_key_or_server_says_what_to_set() -> None:
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        make_provider("openai", {})


async def test_openai_provider_speaks_function_calling_to_a_compatible_server(openai_server: FakeOpenAI) -> None:
    provider = make_provider("openai", openai_server.environ)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "note hello"}]
    try:
        first = await provider.complete(LLMRequest("probe", "gpt-4o-mini", messages, [NOTE_TOOL]))
        assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("call_1", "probe_note", {"text": "hello"})]
        assert (first.input_tokens, first.output_tokens) == (20, 5)
        messages += [
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "name": "probe_note", "arguments": {"text": "hello"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"noted": "hello"}'},
        ]
        second = await provider.complete(LLMRequest("probe", "gpt-4o-mini", messages, [NOTE_TOOL]))
    finally:
        await provider.close()
    assert second.text == "I noted hello." and not second.tool_calls
    assert second.cost > 0
    sent = openai_server.requests
    assert sent[0]["model"] == "gpt-4o-mini"
    assert sent[0]["tools"] == [{"type": "function", "function": {
        "name": "probe_note", "description": "Note down a text.", "parameters": NOTE_TOOL["input_schema"]}}]
    assert sent[1]["messages"][1]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "probe_note", "arguments": '{"text": "hello"}'}}]
    assert sent[1]["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"noted": "hello"}'}


async def test_openai_provider_reports_a_server_refusal_as_one_line_llm_error(openai_server: FakeOpenAI) -> None:
    openai_server.replies.clear()
    provider = make_provider("openai", openai_server.environ)
    try:
        with pytest.raises(LLMError, match=r"^openai: 404 Not Found at http://127\.0\.0\.1:\d+/v1$") as caught:
            await provider.complete(LLMRequest("probe", "gpt-4o-mini", [{"role": "user", "content": "hi"}]))
        assert "\n" not in str(caught.value)
    finally:
        await provider.close()


async def test_prose_reaches_a_real_tool_through_the_openai_provider(make_ecosystem,
                                                                      openai_server: FakeOpenAI) -> None:
    async with make_ecosystem([Fiedler, Probe], provider="openai", environ=openai_server.environ) as eco:
        _, replies = await eco.send("@Probe please note that hello")
    assert len(replies) == 1
    reply = replies[0]
    assert reply.data["ok"] is True
    assert "I noted hello." in reply.content
    assert reply.data["stage"]["name"] == "imperator"
    assert reply.data["stage"]["llm_calls"] == 2
    assert reply.data["stage"]["tool_calls"] == ["probe_note"]
    tool_message = openai_server.requests[1]["messages"][-1]
    assert tool_message == {"role": "tool", "tool_call_id": "call_1", "content": '{"noted": "hello"}'}
    assert openai_server.requests[0]["tools"][0]["function"]["name"] == "probe_note"
    results = [e.payload for e in eco.events.of("llm_result")]
    assert [[c["name"] for c in r["tool_calls"]] for r in results] == [["probe_note"], []]
    assert all(r["caller"] == "probe" and r["input_tokens"] == 20 for r in results)
