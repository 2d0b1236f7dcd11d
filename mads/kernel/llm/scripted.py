"""Replies from a JSON Lines file: for tests, demos and evaluations.

Each line is one reply: `{"text": "..."}` or `{"tool_calls": [{"name": "horace_write_file",
"arguments": {...}}]}`, optionally with `"mad": "horace"` to serve only that MAD and
`"usage": {"input_tokens": 10, "output_tokens": 5}`. Replies are served in order, each once.

A line with `"when": "<regex>"` is a rule instead: it is never used up, and the first rule in
file order whose regex matches (re.search) the request's last user message answers it; `{name}`
in its text or in its tool calls' string arguments is filled from the regex's named groups.
When the request's last message is a tool result, a rule answers only if it says
`"after_tool": true`; otherwise the answer is the text `done`. A request no rule matches is
served the next ordered reply, or is a one-line error naming the request.
"""
from __future__ import annotations

import json
import re
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
        self.rules: list[tuple[re.Pattern[str], dict[str, Any]]] = []
        for reply in replies:
            if "when" in reply:
                self.rules.append((re.compile(reply["when"]), reply))
                continue
            mad = reply.get("mad")
            (self._per_mad.setdefault(mad.lower(), deque()) if mad else self._shared).append(reply)
        self.served = 0

    def models(self) -> list[str]:
        return ["scripted"]

    def remaining(self) -> int:
        return len(self._shared) + sum(len(q) for q in self._per_mad.values())

    def _rule(self, request: LLMRequest) -> dict[str, Any] | None:
        """The answer of the first matching rule (groups filled in); `done` after a tool result."""
        if not self.rules:
            return None
        asked = next((m.get("content") for m in reversed(request.messages) if m.get("role") == "user"), None)
        after_tool = bool(request.messages) and request.messages[-1].get("role") == "tool"
        if not isinstance(asked, str):
            return {"text": "done"} if after_tool else None
        for pattern, rule in self.rules:
            mad = rule.get("mad")
            if mad and mad.lower() != request.mad.lower():
                continue
            if bool(rule.get("after_tool")) != after_tool:
                continue
            found = pattern.search(asked)
            if found is not None:
                return _filled(rule, {k: v for k, v in found.groupdict().items() if v is not None})
        return {"text": "done"} if after_tool else None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        reply = self._rule(request)
        if reply is None:
            queue = self._per_mad.get(request.mad.lower())
            if not queue:
                queue = self._shared
            if not queue:
                if self.rules:
                    asked = next((m.get("content") for m in reversed(request.messages) if m.get("role") == "user"), "")
                    raise LLMError(f"no rule of the script matches {str(asked)[:120]!r} (for {request.mad})")
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


def _filled(rule: dict[str, Any], groups: dict[str, str]) -> dict[str, Any]:
    """The rule's reply with `{name}` replaced by the named groups, in its text and string arguments."""
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(\w+)\}", lambda m: groups.get(m.group(1), m.group(0)), value)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    reply = {k: v for k, v in rule.items() if k not in ("when", "after_tool")}
    if "text" in reply:
        reply["text"] = fill(reply["text"])
    if "tool_calls" in reply:
        reply["tool_calls"] = [{**call, "arguments": fill(call.get("arguments", {}))} for call in reply["tool_calls"]]
    return reply


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
    if "when" in reply:
        if not isinstance(reply["when"], str):
            return "\"when\" must be a regular expression"
        try:
            re.compile(reply["when"])
        except re.error as exc:
            return f"\"when\" is not a regular expression: {exc}"
    if "after_tool" in reply and not isinstance(reply["after_tool"], bool):
        return "\"after_tool\" must be true or false"
    calls = reply.get("tool_calls", [])
    if not isinstance(calls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)
            for c in calls):
        return "\"tool_calls\" must be a list of {\"name\": ..., \"arguments\": {...}}"
    usage = reply.get("usage", {})
    if not isinstance(usage, dict) or not all(isinstance(v, int) for v in usage.values()):
        return "\"usage\" must map input_tokens and output_tokens to integers"
    return None
