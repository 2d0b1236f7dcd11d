"""Comparing the behaviour of two recorded sessions, MAD by MAD, after normalising what always differs.

Behaviour is the sequence of each MAD's messages, tool calls with arguments and results,
LLM prompts and answers, and crashes. Ids, timestamps and durations are replaced by
placeholders, so two runs of the same code on the same inputs compare equal. A re-run's
LLM calls name the model "replay" (its answers come from the recording): that matches any model.

The report (`--json`) is one object:
    {"same": bool, "diverged": [mad, ...],
     "a": {"session", "path"}, "b": {"session", "path"},
     "mads": {mad: {"same": bool, "events": [count_a, count_b],
                    "code": {"a": sha256|null, "b": sha256|null, "changed": bool},
                    "first_divergence": null | {"index", "seq_a", "seq_b", "expected", "got"}}}}
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mads.kernel.errors import UsageError
from mads.kernel.journal import reader

REPLAY = "replay"
BEHAVIOUR_KINDS = ("message", "tool_call", "tool_result", "llm_call", "llm_result", "crash")
_ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}| UTC)?")
_EPOCH = re.compile(r"\b(?:1[6-9]|2[0-1])\d{8}(?:\.\d+)?\b")
_SESSION = re.compile(r"\d{8}T\d{6}(?:\.\d{3})?Z-[0-9a-f]{6}")
_TIME_KEYS = {"created", "updated", "time", "wall", "mono", "last_active", "applied_at", "started", "since",
              "until", "modified"}
_DURATION_KEYS = ("_ms", "latency", "duration", "_seconds", "elapsed")
_DROP_KEYS = {"traceback", "correlation_id", "reply_to", "message_id", "cost"}


class Normaliser:
    """Replaces ids by placeholders in order of first appearance, times and durations by markers."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _id(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if value not in self.ids:
            self.ids[value] = f"<id{len(self.ids) + 1}>"
        return self.ids[value]

    def text(self, text: str) -> str:
        text = _SESSION.sub("<session>", text)
        text = _ULID.sub(self._id, text)
        text = _ISO.sub("<time>", text)
        return _EPOCH.sub("<time>", text)

    def value(self, value: Any, key: str = "") -> Any:
        if key in _TIME_KEYS and isinstance(value, (int, float, str)) and value not in ("", None):
            return "<time>"
        if key.endswith(_DURATION_KEYS) and isinstance(value, (int, float)):
            return "<duration>"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items() if k not in _DROP_KEYS}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, float) and _EPOCH.fullmatch(repr(value)):
            return "<time>"
        return value


def owner(event: dict[str, Any]) -> str | None:
    """The MAD an event of behaviour belongs to (LLM events belong to the MAD that asked)."""
    if event["kind"] in ("llm_call", "llm_result"):
        return event["payload"].get("caller") or event["mad"]
    return event["mad"]


def step(event: dict[str, Any]) -> dict[str, Any]:
    """The part of an event that is behaviour."""
    p = event["payload"]
    kind = event["kind"]
    if kind == "message":
        m = p.get("message", {})
        return {"kind": kind, "conversation": m.get("conversation"), "content": m.get("content"),
                "tags": m.get("tags"), "data": m.get("data"), "recipients": p.get("recipients")}
    if kind == "tool_call":
        return {"kind": kind, "tool": p.get("tool"), "caller": p.get("caller"), "arguments": p.get("arguments")}
    if kind == "tool_result":
        return {"kind": kind, "tool": p.get("tool"), "ok": p.get("ok"), "result": p.get("result"),
                "error": p.get("error")}
    if kind == "llm_call":
        return {"kind": kind, "model": p.get("model"), "tools": p.get("tools"), "prompt": p.get("prompt")}
    if kind == "llm_result":
        return {"kind": kind, "ok": p.get("ok"), "text": p.get("text"), "tool_calls": p.get("tool_calls"),
                "error": p.get("error")}
    return {"kind": kind, "handler": p.get("handler"), "error": p.get("error")}


@dataclass
class Behaviour:
    """Each MAD's normalised steps, with the seq of the event each came from."""

    path: Path
    session: str
    steps: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    """LLM answers were served from a recording: its calls name the model "replay"."""


def behaviour(path: Path) -> Behaviour:
    meta = reader.read_meta(path)
    result = Behaviour(path, meta.get("session_id", path.stem),
                       replayed=meta.get("config", {}).get("provider") == REPLAY)
    normalisers: dict[str, Normaliser] = {}
    for event in reader.read_events(path, kind=list(BEHAVIOUR_KINDS)):
        mad = owner(event)
        if not mad or mad in ("human", "kernel"):
            continue
        norm = normalisers.setdefault(mad, Normaliser())
        result.steps.setdefault(mad, []).append((event["seq"], norm.value(step(event))))
    for module in reader.read_modules(path):
        for mad in module["mads"]:
            result.code[mad] = module["sha256"]  # the last version loaded wins
    return result


def compare(path_a: Path, path_b: Path) -> dict[str, Any]:
    """The report of where each MAD's behaviour in B first differs from A (see the module docstring)."""
    try:
        a, b = behaviour(path_a), behaviour(path_b)
    except UsageError:
        raise
    mads: dict[str, Any] = {}
    for mad in sorted(set(a.steps) | set(b.steps)):
        steps_a, steps_b = a.steps.get(mad, []), b.steps.get(mad, [])
        divergence = None
        for index in range(max(len(steps_a), len(steps_b))):
            left = steps_a[index] if index < len(steps_a) else None
            right = steps_b[index] if index < len(steps_b) else None
            if left is None or right is None or not _same(left[1], right[1], a.replayed, b.replayed):
                divergence = {"index": index, "seq_a": left[0] if left else None, "seq_b": right[0] if right else None,
                              "expected": left[1] if left else "<no more events>",
                              "got": right[1] if right else "<no more events>"}
                break
        code_a, code_b = a.code.get(mad), b.code.get(mad)
        mads[mad] = {"same": divergence is None, "events": [len(steps_a), len(steps_b)],
                     "code": {"a": code_a, "b": code_b, "changed": code_a != code_b},
                     "first_divergence": divergence}
    diverged = [m for m, r in mads.items() if not r["same"]]
    return {"same": not diverged, "diverged": diverged,
            "a": {"session": a.session, "path": str(path_a)}, "b": {"session": b.session, "path": str(path_b)},
            "mads": mads}


def _same(left: dict[str, Any], right: dict[str, Any], replayed_a: bool, replayed_b: bool) -> bool:
    """Equal steps; a re-run's LLM call names the model "replay" for whichever model the recording used."""
    if left == right:
        return True
    if left.get("kind") != "llm_call" or right.get("kind") != "llm_call":
        return False
    if (replayed_a and left.get("model") == REPLAY) or (replayed_b and right.get("model") == REPLAY):
        return {**left, "model": None} == {**right, "model": None}
    return False


def render(report: dict[str, Any]) -> str:
    """The report for people: one line per MAD, the first divergence spelled out."""
    lines = [f"A {report['a']['session']}  →  B {report['b']['session']}"]
    for mad, r in report["mads"].items():
        code = " (code changed)" if r["code"]["changed"] else ""
        if r["same"]:
            lines.append(f"  {mad:<10} same ({r['events'][0]} events){code}")
            continue
        d = r["first_divergence"]
        lines.append(f"  {mad:<10} DIFFERS at its event {d['index'] + 1} (seq {d['seq_a']} in A, {d['seq_b']} in B){code}")
        lines.append(f"      expected: {_short(d['expected'])}")
        lines.append(f"      got:      {_short(d['got'])}")
    lines.append("same behaviour" if report["same"] else f"behaviour differs: {', '.join(report['diverged'])}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
