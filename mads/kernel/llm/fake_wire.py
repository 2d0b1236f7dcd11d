"""What the fake LLM server says, in each API's own words: the script of replies, and the JSON bodies and SSE
events of OpenAI's chat completions and Anthropic's Messages API, faults included (see fake_server.py)."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODELS = ("fake-small", "fake-large")
FAULTS = ("refused", "401", "404", "429", "500", "503", "529", "context", "cut", "truncated", "bad_tool_json")
"""`refused` is not served (use `closed_port_url()`); `cut` drops the connection mid-stream; `truncated` ends the
stream cleanly before its end (no finish_reason / message_stop); `bad_tool_json` is a tool call whose raw arguments
are not JSON; any other status number answers that status."""


@dataclass
class Reply:
    """One scripted answer: streamed text in chunks, tool calls, or a fault, `times` requests in a row."""

    text: str = "Hello there, human"
    chunks: list[str] | None = None
    """The pieces the text streams in; None: the text split at words into about 4 pieces."""
    delay: float = 0.0
    """Seconds between chunks."""
    first_delay: float = 0.0
    """Seconds before the first chunk (a stream's headers go out at once) or before a JSON answer or a fault."""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(name, raw arguments): the raw text is sent as is, so a string that is not JSON is a malformed call."""
    fault: str | None = None
    """None, or one of FAULTS (or an HTTP status number)."""
    retry_after: float | None = None
    """The `retry-after` header of a 429 (or 5xx) fault."""
    times: int = 1
    """How many requests this reply answers before the next one is used (the last reply repeats)."""
    usage: bool = True
    """Report token usage (an OpenAI stream only when the client asks with stream_options.include_usage)."""

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS and not self.fault.isdigit():
            raise ValueError(f"unknown fault {self.fault!r} (choose one of {', '.join(FAULTS)}, or a status number)")

    def calls(self) -> list[tuple[str, str]]:
        """The tool calls sent (a bad_tool_json fault without any: one whose arguments are not JSON)."""
        if self.fault == "bad_tool_json" and not self.tool_calls:
            return [("fake_tool", '{"path": "a" "b"}')]
        return list(self.tool_calls)

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return split_text(self.text)


def split_text(text: str, parts: int = 4) -> list[str]:
    """The text in about `parts` pieces cut before whitespace (joined back, they are the text)."""
    words = re.findall(r"\s*\S+\s*$|\s*\S+", text) or ([text] if text else [])
    if not words:
        return []
    size = -(-len(words) // min(parts, len(words)))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def cut_point(events: list[tuple[bytes, str | None]]) -> int:
    """Where a "cut" or "truncated" stream ends: after about half its text chunks (at least one), or after its first
    event."""
    texts = [i for i, (_, text) in enumerate(events) if text is not None]
    if not texts:
        return 1
    return texts[max(1, len(texts) // 2) - 1] + 1


def status_of(fault: str) -> int:
    named = {"401": 401, "404": 404, "429": 429, "context": 400}
    if fault in named:
        return named[fault]
    if fault.isdigit():
        return int(fault)
    raise ValueError(f"unknown fault {fault!r} (choose one of {', '.join(FAULTS)})")


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def error_body(api: str, status: int, message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def fault_body(api: str, fault: str, model: str) -> dict[str, Any]:
    """The error body a real server sends for this fault, in the API's own style."""
    if fault == "401":
        return error_body(api, 401, "Incorrect API key provided: fake-***. You can find your API key at "
                                "https://example.invalid/keys.", "invalid_request_error", "invalid_api_key")
    if fault == "404":
        if api == "anthropic":
            return error_body(api, 404, f"model: {model}", "not_found_error")
        return error_body(api, 404, f"The model `{model}` does not exist or you do not have access to it.",
                      "invalid_request_error", "model_not_found")
    if fault == "429":
        return error_body(api, 429, f"Rate limit reached for {model or 'the model'}: requests per min (RPM): "
                                "limit 3, used 3, requested 1.", "requests", "rate_limit_exceeded")
    if fault == "context":
        if api == "anthropic":
            return error_body(api, 400, "prompt is too long: 210183 tokens > 200000 maximum", "invalid_request_error")
        return error_body(api, 400, "This model's maximum context length is 8192 tokens. However, your messages "
                                "resulted in 9000 tokens. Please reduce the length of the messages.",
                      "invalid_request_error", "context_length_exceeded")
    status = status_of(fault)
    if status == 529 or (status == 503 and api == "anthropic"):
        return error_body(api, status, "Overloaded", "server_error")
    if status == 503:
        return error_body(api, status, "The server is overloaded or not ready yet.\nPlease retry later.",
                      "server_error")
    if status >= 500:
        return error_body(api, status, "The server had an error while processing your request. Sorry about that!\n"
                                   "(request id fake)", "server_error")
    return error_body(api, status, f"fault {fault}", "invalid_request_error")


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [part for part in (text[:middle], text[middle:]) if part] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


def openai_completion(reply: Reply, model: str, body: dict[str, Any], number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.calls():
        message["tool_calls"] = [{"id": f"call_{number}_{i}", "type": "function",
                                  "function": {"name": name, "arguments": raw}}
                                 for i, (name, raw) in enumerate(reply.calls())]
    data: dict[str, Any] = {
        "id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.calls() else "stop"}],
    }
    if reply.usage:
        prompt, completion = _tokens(body.get("messages")), _tokens(reply.text + str(reply.calls()))
        data["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion}
    return data


def openai_events(reply: Reply, model: str, body: dict[str, Any], number: int) -> list[tuple[bytes, str | None]]:
    """The SSE events of an OpenAI chat.completion.chunk stream: (bytes, the text chunk it carries or None)."""
    base = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events: list[tuple[bytes, str | None]] = []
    pieces = reply.pieces()
    for i, piece in enumerate(pieces):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        events.append((chunk(delta), piece))
    if not pieces:
        events.append((chunk({"role": "assistant", "content": ""}), None))
    for i, (name, raw) in enumerate(reply.calls()):
        for j, part in enumerate(_halves(raw)):
            call: dict[str, Any] = {"index": i, "function": {"arguments": part}}
            if j == 0:
                call.update(id=f"call_{number}_{i}", type="function")
                call["function"]["name"] = name
            events.append((chunk({"tool_calls": [call]}), None))
    events.append((chunk({}, "tool_calls" if reply.calls() else "stop"), None))
    if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
        prompt, completion = _tokens(body.get("messages")), _tokens(reply.text + str(reply.calls()))
        events.append((_sse({**base, "choices": [], "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}), None))
    events.append((_sse("[DONE]"), None))
    return events


def _tool_input(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def anthropic_message(reply: Reply, model: str, body: dict[str, Any], number: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [{"type": "tool_use", "id": f"toolu_{number}_{i}", "name": name, "input": _tool_input(raw)}
                for i, (name, raw) in enumerate(reply.calls())]
    usage = {"input_tokens": _tokens(body.get("messages")), "output_tokens": _tokens(reply.text)} \
        if reply.usage else {"input_tokens": 0, "output_tokens": 0}
    return {"id": f"msg_{number}", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": "tool_use" if reply.calls() else "end_turn", "stop_sequence": None, "usage": usage}


def anthropic_events(reply: Reply, model: str, body: dict[str, Any],
                      number: int) -> list[tuple[bytes, str | None]]:
    """The SSE events of an Anthropic Messages stream: (bytes, the text chunk it carries or None)."""
    prompt = _tokens(body.get("messages")) if reply.usage else 0
    events: list[tuple[bytes, str | None]] = [(_sse({"type": "message_start", "message": {
        "id": f"msg_{number}", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}},
        "message_start"), None)]
    index = 0
    pieces = reply.pieces()
    if pieces:
        events.append((_sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                            "content_block_start"), None))
        events.append((_sse({"type": "ping"}, "ping"), None))
        for piece in pieces:
            events.append((_sse({"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": piece}}, "content_block_delta"), piece))
        events.append((_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), None))
        index = 1
    for i, (name, raw) in enumerate(reply.calls()):
        events.append((_sse({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": f"toolu_{number}_{i}", "name": name, "input": {}}}, "content_block_start"), None))
        for part in _halves(raw):
            events.append((_sse({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "input_json_delta", "partial_json": part}},
                                "content_block_delta"), None))
        events.append((_sse({"type": "content_block_stop", "index": index}, "content_block_stop"), None))
        index += 1
    output = _tokens(reply.text + str(reply.calls())) if reply.usage else 0
    events.append((_sse({"type": "message_delta", "delta": {"stop_reason": "tool_use" if reply.calls() else
                                                             "end_turn", "stop_sequence": None},
                         "usage": {"output_tokens": output}}, "message_delta"), None))
    events.append((_sse({"type": "message_stop"}, "message_stop"), None))
    return events
