"""Re-running a recording against the current code: same starting state, same inputs, same LLM answers.

The recording's external inputs (human messages, `mad call`s and external MCP calls) are fed
to a fresh ecosystem in their recorded order, each once the effects of the previous one
have settled. LLM calls are answered from the recording. The re-run is itself recorded,
then compared with the original by `madtui.diff`.
"""
from __future__ import annotations

import bisect
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mads.kernel import Config, Ecosystem, ListSink, MadError, UsageError
from mads.kernel.events import Log, Record
from mads.kernel.journal import reader, record_session, snapshot

from .diff import _ULID, compare

SETTLE_TIMEOUT = 60.0
ADMIN_REPLAYED = {"mad_restart_mad"}


@dataclass
class Input:
    """One external input of a recording."""

    seq: int
    kind: str
    """send (a human message), call (a tool called from outside), restart (mad_restart_mad)."""
    content: str | None = None
    conversation: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    caller: str = "human"
    start: int = 0
    """The seq where its effects begin: an external call is recorded after its own tool_call and result."""

    def __post_init__(self) -> None:
        self.start = self.start or self.seq


def external_inputs(path: Path) -> list[Input]:
    """The inputs that came from outside the ecosystem, in recorded order."""
    inputs: list[Input] = []
    calls: dict[tuple[str, str], int] = {}  # the latest tool_call by (tool, caller): where an external call began
    # held at a breakpoint: (the text delivered, when), or None when dropped; it is fed when it was delivered
    delivered: dict[str, tuple[str, int] | None] = {}
    for event in reader.read_events(path, kind=["break_continue", "break_drop"]):
        p = event["payload"]
        delivered[p.get("message_id", "")] = ((p.get("delivered", ""), event["seq"])
                                              if event["kind"] == "break_continue" else None)
    for event in reader.read_events(path, kind=["human_input", "external_call", "tool_call"]):
        p = event["payload"]
        if event["kind"] == "tool_call":
            calls[(p.get("tool") or "", p.get("caller") or "")] = event["seq"]
            continue
        if event["kind"] == "human_input":
            if "content" in p:
                content, seq = p["content"], event["seq"]
                if (p.get("message_id") or "") in delivered:
                    held = delivered[p["message_id"]]
                    if held is None:  # dropped at a breakpoint: it never reached anyone
                        continue
                    content, seq = held
                inputs.append(Input(seq, "send", content=content, conversation=event["conversation"],
                                    caller=event["mad"] or "human"))
            elif "tool" in p:
                inputs.append(Input(event["seq"], "call", tool=p["tool"], arguments=p.get("arguments") or {}))
            continue
        tool = p.get("tool")
        if not tool or p.get("status") == 401:
            continue
        if tool.startswith("mad_"):
            if tool in ADMIN_REPLAYED and p.get("ok"):
                inputs.append(Input(event["seq"], "restart", tool=tool, arguments=p.get("arguments") or {}))
            continue  # mad_send shows up as its own human_input; status, pause and profile change nothing
        caller = p.get("client") or "mcp"
        began = calls.pop((tool, caller), 0)
        previous = max((item.seq for item in inputs if item.seq < event["seq"]), default=0)
        inputs.append(Input(event["seq"], "call", tool=tool, arguments=p.get("arguments") or {}, caller=caller,
                            start=began if began > previous else event["seq"]))
    return sorted(inputs, key=lambda item: item.start)  # a message held at a breakpoint came in when released


def _ids_in(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return list(dict.fromkeys(_ULID.findall(text)))


class IdMap:
    """Recorded ids (conversations made during the session) mapped to the ids the re-run made instead.

    An id both runs show came with the starting state and stands for itself; the others are
    paired in the order they first appear in the outcomes of the same input.
    """

    def __init__(self) -> None:
        self.map: dict[str, str] = {}

    def learn(self, recorded: list[str], rerun: list[str]) -> None:
        for same in set(recorded) & set(rerun):  # a fresh id of the re-run never equals a recorded one
            self.map.setdefault(same, same)
        known = set(self.map.values())
        fresh_recorded = [i for i in recorded if i not in self.map]
        fresh_rerun = [i for i in rerun if i not in known]
        for old, new in zip(fresh_recorded, fresh_rerun):
            self.map[old] = new

    def apply(self, value: Any) -> Any:
        if not self.map:
            return value
        text = json.dumps(value)
        text = re.sub(_ULID, lambda m: self.map.get(m.group(0), m.group(0)), text)
        return json.loads(text)


def _outcome_ids(events: Sequence[dict[str, Any] | Record]) -> list[str]:
    """Ids a tool result or message data carried, in order: what later inputs may refer to."""
    found: list[str] = []
    for event in events:
        p = event["payload"] if isinstance(event, dict) else event.payload
        kind = event["kind"] if isinstance(event, dict) else event.kind
        if kind == "tool_result" and p.get("ok"):
            found += _ids_in(p.get("result"))
        elif kind == "message":
            found += _ids_in((p.get("message") or {}).get("data"))
    return list(dict.fromkeys(found))


@dataclass
class RerunResult:
    """The new recording and how it compares with the original."""

    source: Path
    journal: Path
    inputs: int
    report: dict[str, Any]
    llm_mismatches: int
    llm_unrecorded: int = 0
    """LLM calls the recording had no answer for (the re-run cannot stand for the original)."""
    effects: list[list[dict[str, Any]]] = field(default_factory=list)
    """Per input, in order: the messages and tool results it caused in the re-run ({kind, mad, payload})."""


async def rerun(source: Path, *, sessions: Path, mad_path: list[Path] | None = None, live_llm: bool = False,
                environ: Mapping[str, str] | None = None, isolate: list[str] | None = None,
                replace: list[Path] | None = None, only: list[str] | None = None,
                compare_to_source: bool = True) -> RerunResult:
    """Feed the recording's inputs to the current code and compare the behaviour; UsageError if unusable.

    `replace`: module files re-run in place of the modules defining the same MADs (a candidate version).
    `only`: start only these MADs (the others are not part of the recording's story).
    `compare_to_source=False`: leave the comparison to the caller (the result's report is then empty).
    """
    meta = reader.read_meta(source)
    inputs = external_inputs(source)
    if not inputs:
        raise UsageError(f"{source.name} has no external inputs to re-run")
    config_meta = meta.get("config", {})
    env = dict(os.environ if environ is None else environ)
    env["MAD_REPLAY_JOURNAL"] = str(source)
    original_provider = config_meta.get("provider", "offline")
    if live_llm and original_provider not in ("replay", "offline"):
        env["MAD_REPLAY_LIVE"] = original_provider
    folders = mad_path if mad_path is not None else [Path(p) for p in config_meta.get("mad_path", [])]
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        raise UsageError(f"MAD_PATH folder not found: {missing[0]} (pass --mad-path)")
    recorded = list(reader.read_events(source, kind=["tool_result", "message"]))
    seqs = [e["seq"] for e in recorded]  # in seq order: each input's window is found by bisection
    with tempfile.TemporaryDirectory(prefix="mad-rerun-") as home_text:
        home = Path(home_text)
        snapshot.restore(source, home)
        config = Config(home=home, mad_path=folders, provider="replay", environ=env, sample_interval=0,
                        isolate=list(config_meta.get("isolate", [])) if isolate is None else isolate,
                        sandbox=env.get("MAD_SANDBOX") or "auto", replace=list(replace or []),
                        only=only)
        eco = Ecosystem(config)
        seen = ListSink(lambda e: e.kind in ("tool_result", "message"))
        eco.hub.add_sink(seen)
        ids = IdMap()
        effects: list[list[dict[str, Any]]] = []
        with record_session(eco, sessions, argv=["mad", "rerun", str(source)], command="rerun") as recording:
            assert recording is not None
            recording.writer.set_meta("rerun_of", meta.get("session_id", source.stem))
            async with eco:
                for index, item in enumerate(inputs):
                    start = len(seen.events)
                    await _feed(eco, item, ids)
                    await eco.settle(timeout=SETTLE_TIMEOUT)
                    until = inputs[index + 1].start if index + 1 < len(inputs) else None
                    low = bisect.bisect_left(seqs, item.start)
                    high = bisect.bisect_left(seqs, until) if until is not None else len(seqs)
                    window = recorded[low:high]
                    ids.learn(_outcome_ids(window), _outcome_ids(seen.events[start:]))
                    effects.append([{"kind": r.kind, "mad": r.mad, "payload": r.payload} for r in seen.events[start:]])
                mismatches, unrecorded = _replayed(eco)  # Fiedler lets go of its provider when it stops
            journal = recording.path
    report = compare(source, journal) if compare_to_source else {}
    return RerunResult(source, journal, len(inputs), report, mismatches, unrecorded, effects)


def _replayed(eco: Ecosystem) -> tuple[int, int]:
    """How many LLM prompts differed from the recorded ones (each was answered from the recording anyway),
    and how many calls found no recorded answer."""
    provider = getattr(eco.services.get("llm"), "_provider", None)
    return len(getattr(provider, "mismatches", [])), len(getattr(provider, "unrecorded", []))


async def _feed(eco: Ecosystem, item: Input, ids: IdMap) -> None:
    """Give one input to the ecosystem; what it answers is recorded, errors included."""
    try:
        if item.kind == "send":
            conversation = ids.apply(item.conversation) if item.conversation else None
            await eco.send(ids.apply(item.content), conversation=conversation, sender=item.caller, timeout=60)
        elif item.kind == "call" and item.tool:
            await eco.call_tool(item.tool, ids.apply(item.arguments), caller=item.caller)
        elif item.kind == "restart":
            await eco.restart_mad(str(item.arguments.get("mad", "")))
    except MadError as exc:  # the original may have failed the same way; the comparison decides
        eco.hub.emit(Log(mad="kernel", level="info", message=f"re-run input #{item.seq} failed: {exc}"))
