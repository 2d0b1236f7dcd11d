"""Any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) through the `openai` SDK."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .base import (CONTEXT_PATTERN, LLMError, LLMRequest, LLMResponse, Provider, ToolCall, connection_error, cost_of,
                   cut_error, estimate_tokens, one_line, parse_arguments, public_url, redact, status_error)

OPENAI_URL = "https://api.openai.com/v1"


def to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our chat messages in the OpenAI wire form."""
    out = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            out.append({
                "role": "assistant",
                "content": m.get("content") or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function",
                     "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                    for c in m["tool_calls"]
                ],
            })
        elif m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def to_openai_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {
            "name": t["name"], "description": t.get("description", ""), "parameters": t["input_schema"]}}
        for t in tools
    ]


class _Assembly:
    """A streamed chat completion put back together: text, tool calls by index, usage, model."""

    def __init__(self, on_text: Callable[[str], None] | None) -> None:
        self.on_text = on_text
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.chunks = 0
        self.finished = False
        self.usage: tuple[int, int] | None = None
        self.model = ""

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        if getattr(chunk, "model", None):
            self.model = chunk.model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = (usage.prompt_tokens or 0, usage.completion_tokens or 0)
        for choice in chunk.choices or []:
            if choice.index not in (0, None):
                continue
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    self.text.append(delta.content)
                    if self.on_text is not None:
                        self.on_text(delta.content)
                for position, call in enumerate(delta.tool_calls or []):
                    index = call.index if call.index is not None else position
                    function = call.function
                    self.add_call(index, call.id, function.name if function else None,
                                  function.arguments if function else None)
            if choice.finish_reason:
                self.finished = True

    def add_call(self, index: int, id: str | None, name: str | None, arguments: str | None) -> None:
        slot = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if id:
            slot["id"] = id
        if name and name != slot["name"]:  # sent once by most servers, repeated whole by a few
            slot["name"] += name
        if arguments:
            slot["arguments"] += arguments

    def tool_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self.calls):
            slot = self.calls[index]
            arguments, error = parse_arguments(slot["arguments"])
            calls.append(ToolCall(slot["name"], arguments, slot["id"] or f"call_{index}", error))
        return calls


async def _close(stream: Any) -> None:
    """Close a response stream and its connection (the server sees the client go), also for a cancelled task."""
    try:
        await stream.close()
    except Exception:  # noqa: BLE001 (closing what already failed: its own error was raised)
        pass


class OpenAIProvider(Provider):
    """Chat completions with tool calling, streamed; OPENAI_BASE_URL points it at any compatible server."""

    name = "openai"
    key_variable = "OPENAI_API_KEY"

    def __init__(self, environ: dict[str, str]) -> None:
        try:
            import openai
        except ImportError:
            raise LLMError("the openai provider needs its SDK: pip install 'mad[openai]'") from None
        base_url = environ.get("OPENAI_BASE_URL")
        api_key = environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
        if not api_key:
            raise LLMError("the openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self._secrets = [environ.get("OPENAI_API_KEY")]
        # Every setting comes from the given environment: the SDK would read os.environ for a missing one.
        # No retries here: Fiedler retries what is retryable, with backoff, and shows the wait.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, organization=environ.get("OPENAI_ORG_ID"),
            project=environ.get("OPENAI_PROJECT_ID"), max_retries=0, timeout=openai.Timeout(120.0, connect=10.0))
        self._openai = openai
        self.default_model = environ.get("MAD_MODEL") or "gpt-4o-mini"

    def models(self) -> list[str]:
        return [self.default_model]

    async def list_models(self) -> list[str]:
        try:
            return [model.id async for model in self._client.models.list()]
        except self._openai.APIStatusError as exc:
            if exc.status_code == 404:
                raise LLMError(f"openai: {public_url(self.base_url)} does not list its models (404)",
                               status=404) from None
            raise self._status_error(exc, None) from None
        except self._openai.APIConnectionError as exc:
            raise connection_error("openai", self.base_url, exc) from None
        except self._openai.OpenAIError as exc:
            raise self._other_error(exc, None) from None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        messages = to_openai_messages(request.messages)
        kwargs: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if request.tools:
            kwargs["tools"] = to_openai_tools(request.tools)
        started = time.perf_counter()
        assembly = _Assembly(request.on_text)
        stream = None
        try:
            stream = await self._client.chat.completions.create(**kwargs)
            content_type = stream.response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                # A server that ignores stream=True answers the whole completion at once.
                self._add_whole(assembly, json.loads(await stream.response.aread()))
            else:
                async for chunk in stream:
                    assembly.add(chunk)
        except self._openai.APIStatusError as exc:
            raise self._status_error(exc, request.model) from None
        except self._openai.APIConnectionError as exc:
            if stream is None:
                raise connection_error("openai", self.base_url, exc) from None
            timed_out = isinstance(exc, self._openai.APITimeoutError)
            raise cut_error("openai", assembly.chunks, "timed out" if timed_out else "") from None
        except self._openai.OpenAIError as exc:
            raise self._other_error(exc, request.model) from None
        except json.JSONDecodeError as exc:  # a body or chunk that is not JSON
            raise LLMError(f"openai: the server sent what is not JSON after {assembly.chunks} chunks: "
                           f"{one_line(exc, 120)}") from None
        finally:
            if stream is not None:
                await _close(stream)
        if not assembly.finished:
            raise cut_error("openai", assembly.chunks)
        text = "".join(assembly.text)
        calls = assembly.tool_calls()
        if assembly.usage is not None:
            tokens_in, tokens_out = assembly.usage
        else:
            tokens_in = estimate_tokens(messages)
            tokens_out = estimate_tokens(text + "".join(slot["arguments"] for slot in assembly.calls.values()))
        return LLMResponse(
            text=text,
            tool_calls=calls,
            model=assembly.model or request.model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost_of(request.model, tokens_in, tokens_out),
            latency=time.perf_counter() - started,
        )

    @staticmethod
    def _add_whole(assembly: _Assembly, data: Any) -> None:
        """A non-streamed chat.completion into the assembly (its text reaches on_text in one piece)."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise LLMError("openai: the server answered with no choices")
        assembly.chunks = 1
        assembly.model = data.get("model") or ""
        message = choices[0].get("message") or {}
        if message.get("content"):
            assembly.text.append(message["content"])
            if assembly.on_text is not None:
                assembly.on_text(message["content"])
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            assembly.add_call(index, call.get("id"), function.get("name"), function.get("arguments"))
        usage = data.get("usage")
        if usage:
            assembly.usage = (usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        assembly.finished = True

    def _status_error(self, exc: Any, model: str | None) -> LLMError:
        body = exc.body
        if isinstance(body, dict):
            message = body.get("message") or ""
        elif isinstance(body, str) and not body.lstrip().startswith("<"):
            message = body
        else:
            message = ""
        return status_error("openai", exc.status_code, str(message), base_url=self.base_url,
                            key_variable=self.key_variable, model=model, code=exc.code,
                            headers=exc.response.headers, reason=exc.response.reason_phrase, secrets=self._secrets)

    def _other_error(self, exc: Any, model: str | None) -> LLMError:
        """An error without an HTTP status: an error event inside the stream, a body that does not fit."""
        message = one_line(getattr(exc, "message", None) or exc) or type(exc).__name__
        code = getattr(exc, "code", None)
        if code == "context_length_exceeded" or (model and CONTEXT_PATTERN.search(message)):
            return LLMError(redact(f"openai: the prompt is too long for model {model!r}: {one_line(message, 120)}",
                                   self._secrets))
        return LLMError(redact(f"openai: {message}", self._secrets))

    async def close(self) -> None:
        await self._client.close()
