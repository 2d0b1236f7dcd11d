"""Replies from a JSON Lines file, in order: for tests and demos.

Each line is one reply: `{"text": "..."}` or `{"tool_calls": [{"name": "horace_write_file",
"arguments": {...}}]}`, optionally with `"mad": "horace"` to serve only that MAD and
`"usage": {"input_tokens": 10, "output_tokens": 5}`.
"""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall, estimate_tokens


class ScriptedProvider(Provider):
    """Serves the script's replies in order; a reply bound to a MAD is served only to it."""

    name = "scripted"

    def __init__(self, path: Path | str | None = None, replies: list[dict[str, Any]] | None = None) -> None:
        if replies is None:
            if path is None:
                raise LLMError("the scripted provider needs MAD_SCRIPT=replies.jsonl")
            replies = load_script(Path(path))
        else:
            for number, reply in enumerate(replies, 1):
                problem = check_reply(reply)
                if problem:
                    raise LLMError(f"reply {number}: {problem}")
        self._shared: deque[dict[str, Any]] = deque()
        self._per_mad: dict[str, deque[dict[str, Any]]] = {}
        for reply in replies:
            mad = reply.get("mad")
            (self._per_mad.setdefault(mad.lower(), deque()) if mad else self._shared).append(reply)
        self.served = 0

    def models(self) -> list[str]:
        return ["scripted"]

    def remaining(self) -> int:
        return len(self._shared) + sum(len(q) for q in self._per_mad.values())

    async def complete(self, request: LLMRequest) -> LLMResponse:
        queue = self._per_mad.get(request.mad.lower())
        if not queue:
            queue = self._shared
        if not queue:
            raise LLMError(f"the script has no reply left for {request.mad} (served {self.served})")
        reply = queue.popleft()
        self.served += 1
        calls = [
            ToolCall(c["name"], dict(c.get("arguments", {})), c.get("id") or f"call_{self.served}_{i}")
            for i, c in enumerate(reply.get("tool_calls", []))
        ]
        usage = reply.get("usage", {})
        return LLMResponse(
            text=reply.get("text", ""),
            tool_calls=calls,
            model=request.model,
            input_tokens=int(usage.get("input_tokens", estimate_tokens(request.messages))),
            output_tokens=int(usage.get("output_tokens", estimate_tokens(reply))),
        )


def load_script(path: Path) -> list[dict[str, Any]]:
    """Read a JSON Lines script; a bad line is reported with its number."""
    if not path.is_file():
        raise LLMError(f"MAD_SCRIPT file not found: {path}")
    replies = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LLMError(f"{path}:{number}: not JSON: {exc.msg}") from None
        problem = check_reply(reply)
        if problem:
            raise LLMError(f"{path}:{number}: {problem}")
        replies.append(reply)
    return replies


def check_reply(reply: Any) -> str | None:
    """What is wrong with one script reply, or None when it can be served."""
    if not isinstance(reply, dict) or not ({"text", "tool_calls"} & reply.keys()):
        return "a reply needs \"text\" or \"tool_calls\""
    if "text" in reply and not isinstance(reply["text"], str):
        return "\"text\" must be a string"
    if "mad" in reply and not isinstance(reply["mad"], str):
        return "\"mad\" must be a MAD's name"
    calls = reply.get("tool_calls", [])
    if not isinstance(calls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)
            for c in calls):
        return "\"tool_calls\" must be a list of {\"name\": ..., \"arguments\": {...}}"
    usage = reply.get("usage", {})
    if not isinstance(usage, dict) or not all(isinstance(v, int) for v in usage.values()):
        return "\"usage\" must map input_tokens and output_tokens to integers"
    return None
