"""Any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) through the `openai` SDK."""
from __future__ import annotations

import json
import time
from typing import Any

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall, cost_of

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


class OpenAIProvider(Provider):
    """Chat completions with tool calling; OPENAI_BASE_URL points it at any compatible server."""

    name = "openai"

    def __init__(self, environ: dict[str, str]) -> None:
        try:
            import openai
        except ImportError:
            raise LLMError("the openai provider needs its SDK: pip install 'mad[openai]'") from None
        base_url = environ.get("OPENAI_BASE_URL")
        api_key = environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
        if not api_key:
            raise LLMError("the openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        # Every setting comes from the given environment: the SDK would read os.environ for a missing one.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or OPENAI_URL, organization=environ.get("OPENAI_ORG_ID"),
            project=environ.get("OPENAI_PROJECT_ID"), max_retries=1, timeout=120)
        self._error = openai.OpenAIError
        self.default_model = environ.get("MAD_MODEL") or "gpt-4o-mini"

    def models(self) -> list[str]:
        return [self.default_model]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        kwargs: dict[str, Any] = {"model": request.model, "messages": to_openai_messages(request.messages)}
        if request.tools:
            kwargs["tools"] = to_openai_tools(request.tools)
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(**kwargs)
        except self._error as exc:
            raise LLMError(f"openai: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        if not completion.choices:
            raise LLMError(f"openai: the server answered {request.model} with no choices")
        choice = completion.choices[0].message
        calls = []
        for call in choice.tool_calls or []:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                arguments = {"_unparsed": call.function.arguments}
            calls.append(ToolCall(call.function.name, arguments, call.id))
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        model = completion.model or request.model
        return LLMResponse(
            text=choice.content or "",
            tool_calls=calls,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost_of(request.model, tokens_in, tokens_out),
            latency=time.perf_counter() - started,
        )

    async def close(self) -> None:
        await self._client.close()
