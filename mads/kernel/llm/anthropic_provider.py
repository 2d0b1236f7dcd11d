"""Anthropic's Messages API through the `anthropic` SDK."""
from __future__ import annotations

import time
from typing import Any

from .base import (LLMError, LLMRequest, LLMResponse, Provider, ToolCall, connection_error, cost_of, cut_error,
                   estimate_tokens, one_line, parse_arguments, public_url, redact, status_error)

ANTHROPIC_URL = "https://api.anthropic.com"

ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
"""The HTTP status of an error type, for an error event inside a stream (whose HTTP status was 200)."""


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
    """Claude models with tool use, streamed; ANTHROPIC_API_KEY, optional ANTHROPIC_BASE_URL."""

    name = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"

    def __init__(self, environ: dict[str, str]) -> None:
        try:
            import anthropic
        except ImportError:
            raise LLMError("the anthropic provider needs its SDK: pip install 'mad[anthropic]'") from None
        api_key = environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise LLMError("the anthropic provider needs ANTHROPIC_API_KEY")
        self.base_url = (environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL).rstrip("/")
        self._secrets = [api_key]
        # The base URL is always given (the SDK would read os.environ for a missing one); no retries here: Fiedler
        # retries what is retryable, with backoff, and shows the wait.
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=self.base_url, max_retries=0,
                                                timeout=anthropic.Timeout(120.0, connect=10.0))
        self._anthropic = anthropic
        self.default_model = environ.get("MAD_MODEL") or "claude-sonnet-4-5"

    def models(self) -> list[str]:
        return [self.default_model]

    async def list_models(self) -> list[str]:
        try:
            return [model.id async for model in self._client.models.list(limit=1000)]
        except self._anthropic.APIStatusError as exc:
            if exc.status_code == 404:
                raise LLMError(f"anthropic: {public_url(self.base_url)} does not list its models (404)",
                               status=404) from None
            raise self._status_error(exc, None) from None
        except self._anthropic.APIConnectionError as exc:
            raise connection_error("anthropic", self.base_url, exc) from None
        except self._anthropic.AnthropicError as exc:
            raise LLMError(redact(f"anthropic: {one_line(exc) or type(exc).__name__}", self._secrets)) from None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {"model": request.model, "max_tokens": 4096, "messages": messages, "stream": True}
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                                "input_schema": t["input_schema"]} for t in request.tools]
        started = time.perf_counter()
        text: list[str] = []
        blocks: dict[int, dict[str, str]] = {}
        events = 0
        finished = False
        model = ""
        tokens_in = tokens_out = 0
        usage_seen = False
        stream = None
        try:
            stream = await self._client.messages.create(**kwargs)
            async for event in stream:
                events += 1
                kind = event.type
                if kind == "message_start":
                    model = event.message.model or model
                    if event.message.usage is not None:
                        usage_seen = True
                        tokens_in = _input_tokens(event.message.usage)
                        tokens_out = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        blocks[event.index] = {"id": block.id, "name": block.name, "json": ""}
                    elif block.type == "text" and block.text:
                        text.append(block.text)
                        if request.on_text is not None:
                            request.on_text(block.text)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        text.append(delta.text)
                        if request.on_text is not None:
                            request.on_text(delta.text)
                    elif delta.type == "input_json_delta" and event.index in blocks:
                        blocks[event.index]["json"] += delta.partial_json or ""
                elif kind == "message_delta":
                    if event.usage is not None:
                        usage_seen = True
                        tokens_out = event.usage.output_tokens or tokens_out
                        tokens_in = _input_tokens(event.usage) or tokens_in
                elif kind == "message_stop":
                    finished = True
        except self._anthropic.APIStatusError as exc:
            raise self._status_error(exc, request.model) from None
        except self._anthropic.APIConnectionError as exc:
            if stream is None:
                raise connection_error("anthropic", self.base_url, exc) from None
            timed_out = isinstance(exc, self._anthropic.APITimeoutError)
            raise cut_error("anthropic", events, "timed out" if timed_out else "") from None
        except self._anthropic.AnthropicError as exc:
            raise LLMError(redact(f"anthropic: {one_line(exc) or type(exc).__name__}", self._secrets)) from None
        except Exception as exc:
            # The SDK lets a transport error out of a stream as it is (httpx's RemoteProtocolError...).
            if stream is None or not _is_transport_error(exc):
                raise
            raise cut_error("anthropic", events, "timed out" if "timeout" in type(exc).__name__.lower() else "") \
                from None
        finally:
            if stream is not None:
                await _close(stream)
        if not finished:
            raise cut_error("anthropic", events)
        whole = "".join(text)
        calls = []
        for index in sorted(blocks):
            block = blocks[index]
            arguments, error = parse_arguments(block["json"])
            calls.append(ToolCall(block["name"], arguments, block["id"], error))
        if not usage_seen:
            tokens_in = estimate_tokens(messages)
            tokens_out = estimate_tokens(whole + "".join(b["json"] for b in blocks.values()))
        return LLMResponse(whole, calls, model or request.model, tokens_in, tokens_out,
                           cost_of(request.model, tokens_in, tokens_out), time.perf_counter() - started)

    def _status_error(self, exc: Any, model: str | None) -> LLMError:
        status = exc.status_code
        body = exc.body
        error = body.get("error") if isinstance(body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        if status < 400 and kind:  # an error event inside a stream that began 200 OK
            status = ERROR_STATUS.get(kind, 500)
        message = exc.api_message or (error.get("message") if isinstance(error, dict) else None)
        if message is None and isinstance(body, str) and not body.lstrip().startswith("<"):
            message = body
        return status_error("anthropic", status, str(message or ""), base_url=self.base_url,
                            key_variable=self.key_variable, model=model, headers=exc.response.headers,
                            reason=exc.response.reason_phrase, secrets=self._secrets)

    async def close(self) -> None:
        await self._client.close()


def _input_tokens(usage: Any) -> int:
    """Input tokens, with the cached ones (they count toward the prompt)."""
    return sum(getattr(usage, name, None) or 0 for name in
               ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


def _is_transport_error(exc: BaseException) -> bool:
    """An httpx (or httpx2) transport error: the connection broke or timed out."""
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
               and cls.__name__ in ("TransportError", "TimeoutException") for cls in type(exc).__mro__)


async def _close(stream: Any) -> None:
    """Close a response stream and its connection (the server sees the client go), also for a cancelled task."""
    try:
        await stream.close()
    except Exception:  # noqa: BLE001 (closing what already failed: its own error was raised)
        pass
