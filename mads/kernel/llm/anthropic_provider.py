"""Anthropic's Messages API through the `anthropic` SDK."""
from __future__ import annotations

import time
from typing import Any

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall, cost_of


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Split out the system prompt and turn tool traffic into content blocks."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["arguments"]}
                       for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": blocks})
        elif m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return system, out


class AnthropicProvider(Provider):
    """Claude models with tool use; ANTHROPIC_API_KEY, optional ANTHROPIC_BASE_URL."""

    name = "anthropic"

    def __init__(self, environ: dict[str, str]) -> None:
        try:
            import anthropic
        except ImportError:
            raise LLMError("the anthropic provider needs its SDK: pip install 'mad[anthropic]'") from None
        api_key = environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise LLMError("the anthropic provider needs ANTHROPIC_API_KEY")
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=environ.get("ANTHROPIC_BASE_URL"), max_retries=1)
        self._error = anthropic.AnthropicError
        self.default_model = environ.get("MAD_MODEL") or "claude-sonnet-4-5"

    def models(self) -> list[str]:
        return [self.default_model]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {"model": request.model, "max_tokens": 4096, "messages": messages}
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                                "input_schema": t["input_schema"]} for t in request.tools]
        started = time.perf_counter()
        try:
            result = await self._client.messages.create(**kwargs)
        except self._error as exc:
            raise LLMError(f"anthropic: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        text = "".join(b.text for b in result.content if b.type == "text")
        calls = [ToolCall(b.name, dict(b.input), b.id) for b in result.content if b.type == "tool_use"]
        tokens_in, tokens_out = result.usage.input_tokens, result.usage.output_tokens
        return LLMResponse(text, calls, result.model, tokens_in, tokens_out,
                           cost_of(request.model, tokens_in, tokens_out), time.perf_counter() - started)

    async def close(self) -> None:
        await self._client.close()
