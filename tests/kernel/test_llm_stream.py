"""The openai and anthropic providers stream, fail in one line and list models: real SDK clients against the fake
LLM server (mads/kernel/llm/fake_server.py) on the loopback."""
from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from mads.kernel.llm import LLMError, LLMRequest, Provider, estimate_tokens, make_provider
from mads.kernel.llm.base import public_url, retry_after_of
from mads.kernel.llm.fake_server import FakeLLMServer, Reply, closed_port_url
from tests.helpers import wait_for

pytest.importorskip("anthropic")

APIS = ["openai", "anthropic"]
ANTHROPIC_KEY = "sk-ant-fake-0123456789abcdef"
OPENAI_KEY = "sk-fake-0123456789abcdef"
KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
NOTE_TOOL = {"name": "probe_note", "description": "Note down a text.", "input_schema": {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_script(server: FakeLLMServer) -> None:
    server.reset()


def environ_for(api: str, server: FakeLLMServer) -> dict[str, str]:
    if api == "openai":
        return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": OPENAI_KEY, "MAD_MODEL": "fake-small"}
    return {"ANTHROPIC_BASE_URL": server.anthropic_url, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "MAD_MODEL": "fake-small"}


def url_for(api: str, server: FakeLLMServer) -> str:
    return server.base_url if api == "openai" else server.anthropic_url


@pytest.fixture(params=APIS)
async def provider(request: pytest.FixtureRequest, server: FakeLLMServer) -> AsyncIterator[Provider]:
    made = make_provider(request.param, environ_for(request.param, server))
    try:
        yield made
    finally:
        await made.close()


def ask(text: str = "hi", model: str = "fake-small", **extra: Any) -> LLMRequest:
    return LLMRequest("probe", model, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
                      **extra)


def completions(server: FakeLLMServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


# Streaming ------------------------------------------------------------------------------------------------------

async def test_text_streams_in_order_through_on_text(server: FakeLLMServer, provider: Provider) -> None:
    server.replies = [Reply(chunks=["Hel", "lo the", "re, ", "human"], delay=0.05)]
    seen: list[tuple[str, int]] = []
    answer = await provider.complete(ask(on_text=lambda piece: seen.append((piece, len(server.chunk_times)))))
    assert [piece for piece, _ in seen] == ["Hel", "lo the", "re, ", "human"]
    assert answer.text == "Hello there, human"
    # Pieces reached on_text while the server was still writing the later ones: streamed, not buffered.
    # (On a quiet machine each arrives before the next is written: [1, 2, 3, 4].)
    assert seen[0][1] < 4 and seen[1][1] < 4
    assert answer.model == "fake-small" and answer.input_tokens > 0 and answer.output_tokens > 0
    gaps = [b.perf - a.perf for a, b in zip(server.chunk_times, server.chunk_times[1:])]
    assert len(gaps) == 3 and min(gaps) >= 0.045
    sent = completions(server)[0]
    assert sent.body["stream"] is True and sent.api == provider.name
    if provider.name == "openai":
        assert sent.body["stream_options"] == {"include_usage": True}
    else:
        assert sent.body["system"] == "Be brief." and sent.body["max_tokens"] > 0


async def test_tool_calls_are_assembled_from_streamed_deltas(server: FakeLLMServer, provider: Provider) -> None:
    server.replies = [Reply(text="Noting.", tool_calls=[("probe_note", '{"text": "hello", "tags": ["a", "b"]}'),
                                                        ("probe_list", '{"path": "/tmp", "deep": true}')])]
    pieces: list[str] = []
    answer = await provider.complete(ask("note hello", tools=[NOTE_TOOL], on_text=pieces.append))
    assert "".join(pieces) == answer.text == "Noting."
    assert [(c.name, c.arguments, c.error) for c in answer.tool_calls] == [
        ("probe_note", {"text": "hello", "tags": ["a", "b"]}, ""), ("probe_list", {"path": "/tmp", "deep": True}, "")]
    assert all(c.id for c in answer.tool_calls) and len({c.id for c in answer.tool_calls}) == 2
    body = completions(server)[0].body
    tools = body["tools"]
    assert (tools[0]["function"]["name"] if provider.name == "openai" else tools[0]["name"]) == "probe_note"


async def test_malformed_tool_arguments_become_the_tool_calls_error(server: FakeLLMServer,
                                                                    provider: Provider) -> None:
    long_raw = '{"text": "' + "x" * 200 + '"'
    server.replies = [Reply(text="", tool_calls=[("probe_note", '{"path": "a" "b"}'), ("probe_note", long_raw),
                                                 ("probe_note", '{"text": "fine"}')])]
    bad, truncated, good = (await provider.complete(ask(tools=[NOTE_TOOL]))).tool_calls
    assert bad.arguments == {} and bad.error == \
        'arguments are not valid JSON (Expecting \',\' delimiter: line 1 column 14): {"path": "a" "b"}'
    assert truncated.arguments == {} and truncated.error.startswith("arguments are not valid JSON (")
    assert truncated.error.endswith("…") and len(truncated.error.split("): ", 1)[1]) == 80
    assert "\n" not in truncated.error
    assert (good.arguments, good.error) == ({"text": "fine"}, "")


async def test_openai_usage_is_estimated_when_the_server_reports_none(server: FakeLLMServer) -> None:
    server.replies = [Reply("Hello there, human", usage=False)]
    provider = make_provider("openai", environ_for("openai", server))
    try:
        answer = await provider.complete(ask())
    finally:
        await provider.close()
    sent = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert answer.input_tokens == estimate_tokens(sent)
    assert answer.output_tokens == estimate_tokens("Hello there, human")


# Faults -------------------------------------------------------------------------------------------------------

FAULTS = [
    # fault, model, expected message (a regex after {api}/{url}/{key} are filled in), status, retryable, retry_after
    ("401", "fake-small", r"{api}: 401 unauthorized at {url}: check {key}", 401, False, None),
    ("404", "nope", r"{api}: model 'nope' not found at {url} \(404\)", 404, False, None),
    ("429", "fake-small", r"{api}: rate limited \(429\)", 429, True, 2.5),
    ("500", "fake-small", r"{api}: server error 500: The server had an error while processing your request\. "
                          r"Sorry about that!", 500, True, None),
    ("503", "fake-small", r"{api}: server error 503: (The server is overloaded or not ready yet\.|Overloaded)",
     503, True, None),
    ("529", "fake-small", r"{api}: server error 529: Overloaded", 529, True, None),
    ("context", "fake-small", r"{api}: the prompt is too long for model 'fake-small': "
                              r"(This model's maximum context length is 8192 tokens\. .{{50,}}…"
                              r"|prompt is too long: 210183 tokens > 200000 maximum)", 400, False, None),
    ("cut", "fake-small", r"{api}: the stream was cut after \d+ chunks?", None, False, None),
    ("truncated", "fake-small", r"{api}: the stream was cut after \d+ chunks?", None, False, None),
]


@pytest.mark.parametrize(("fault", "model", "pattern", "status", "retryable", "retry_after"), FAULTS,
                         ids=[f[0] for f in FAULTS])
async def test_each_fault_is_a_one_line_llm_error(server: FakeLLMServer, provider: Provider, fault: str, model: str,
                                                  pattern: str, status: int | None, retryable: bool,
                                                  retry_after: float | None) -> None:
    server.replies = [Reply(fault=fault, retry_after=retry_after), Reply("never served")]
    pieces: list[str] = []
    with pytest.raises(LLMError) as caught:
        await provider.complete(ask(model=model, on_text=pieces.append))
    message = str(caught.value)
    expected = pattern.format(api=provider.name, url=re.escape(url_for(provider.name, server)),
                              key=KEYS[provider.name])
    assert re.fullmatch(expected, message), message
    assert "\n" not in message and "Traceback" not in message
    assert ANTHROPIC_KEY not in message and OPENAI_KEY not in message
    assert len(message) < 220
    assert (caught.value.status, caught.value.retryable, caught.value.retry_after) == (status, retryable, retry_after)
    assert len(completions(server)) == 1, "the provider must not retry by itself"
    if fault in ("cut", "truncated"):
        assert pieces and "".join(pieces) != "Hello there, human"


async def test_a_fault_with_times_fails_that_many_requests_then_the_next_reply_answers(server: FakeLLMServer,
                                                                                      provider: Provider) -> None:
    server.replies = [Reply(fault="429", retry_after=1, times=2), Reply("recovered")]
    for _ in range(2):
        with pytest.raises(LLMError, match=r"rate limited \(429\)") as caught:
            await provider.complete(ask())
        assert caught.value.retryable and caught.value.retry_after == 1
    assert (await provider.complete(ask())).text == "recovered"
    assert (await provider.complete(ask())).text == "recovered"  # the last reply repeats


@pytest.mark.parametrize("api", APIS)
async def test_an_unreachable_server_is_named_with_the_reason(api: str) -> None:
    url = closed_port_url("/v1" if api == "openai" else "")
    environ = {"OPENAI_BASE_URL": url} if api == "openai" else {"ANTHROPIC_BASE_URL": url,
                                                                "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    provider = make_provider(api, environ)
    try:
        with pytest.raises(LLMError) as caught:
            await provider.complete(ask())
        assert str(caught.value) == f"{api}: cannot reach {url}: connection refused"
        assert caught.value.status is None and not caught.value.retryable
        with pytest.raises(LLMError) as listing:
            await provider.list_models()
        assert str(listing.value) == f"{api}: cannot reach {url}: connection refused"
    finally:
        await provider.close()


# Cancelling ---------------------------------------------------------------------------------------------------

CANCEL_POINTS = {
    "before-the-answer": Reply(fault="500", first_delay=5),  # no headers yet: cancelled inside the SDK's request
    "before-the-first-chunk": Reply(first_delay=5),  # headers sent, the stream waits
    "mid-stream": Reply(chunks=["one ", "two ", "three"], delay=5),
}


@pytest.mark.parametrize("point", list(CANCEL_POINTS))
async def test_cancelling_a_completion_closes_its_connection(server: FakeLLMServer, provider: Provider,
                                                             point: str) -> None:
    server.replies = [CANCEL_POINTS[point]]
    pieces: list[str] = []
    started = time.monotonic()
    task = asyncio.create_task(provider.complete(ask(on_text=pieces.append)))
    if point == "mid-stream":
        await wait_for(lambda: pieces == ["one "], timeout=5, what="the first chunk")
    else:
        await wait_for(lambda: len(completions(server)) == 1, timeout=5, what="the request at the server")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The loop is blocked while waiting: the connection was closed by the time the cancelled task ended.
    assert server.wait_until(lambda s: s.disconnects == 1, timeout=5), "the server never saw the client go"
    assert server.disconnected.is_set()
    assert time.monotonic() - started < 3


# Models -------------------------------------------------------------------------------------------------------

async def test_list_models_asks_the_server(server: FakeLLMServer, provider: Provider) -> None:
    assert await provider.list_models() == ["fake-small", "fake-large"]
    server.models = ["only-one"]
    try:
        assert await provider.list_models() == ["only-one"]
    finally:
        server.models = ["fake-small", "fake-large"]
    assert [(r.method, r.path, r.api) for r in server.requests] == [("GET", "/v1/models", provider.name)] * 2
    assert provider.models() == ["fake-small"]


async def test_list_models_says_why_it_cannot(server: FakeLLMServer) -> None:
    server.api_key = "the-right-key-123"
    provider = make_provider("openai", environ_for("openai", server))
    try:
        with pytest.raises(LLMError) as caught:
            await provider.list_models()
    finally:
        server.api_key = None
        await provider.close()
    assert str(caught.value) == f"openai: 401 unauthorized at {server.base_url}: check OPENAI_API_KEY"


# The pieces -----------------------------------------------------------------------------------------------------

def test_retry_after_and_shown_urls() -> None:
    assert retry_after_of({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_of({"retry-after": "3"}) == 3.0
    assert retry_after_of({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_of({"retry-after": "soon"}) is None and retry_after_of({}) is None
    assert public_url("http://user:sk-secret@host:8080/v1/?key=sk-secret") == "http://host:8080/v1"


def test_the_fake_server_answers_plain_http_in_both_styles(server: FakeLLMServer) -> None:
    server.replies = [Reply("plain answer")]
    openai_style = httpx2.post(f"{server.base_url}/chat/completions",
                               json={"model": "fake-small", "messages": [{"role": "user", "content": "hi"}]}).json()
    assert openai_style["choices"][0]["message"]["content"] == "plain answer"
    anthropic_style = httpx2.post(f"{server.anthropic_url}/v1/messages", headers={"anthropic-version": "2023-06-01"},
                                  json={"model": "fake-small", "max_tokens": 5, "messages": []}).json()
    assert anthropic_style["content"] == [{"type": "text", "text": "plain answer"}]
    unknown = httpx2.post(f"{server.anthropic_url}/v1/messages", headers={"x-api-key": "k"},
                          json={"model": "nope", "max_tokens": 5, "messages": []})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


def test_the_fake_server_runs_from_the_command_line() -> None:
    process = subprocess.Popen([sys.executable, "-m", "mads.kernel.llm.fake_server", "--delay", "0", "--text", "hi there"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line + (process.stderr.read() if process.poll() is not None else "")
        models = httpx2.get(f"{match.group(1)}/models").json()
        assert [m["id"] for m in models["data"]] == ["fake-small", "fake-large"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
