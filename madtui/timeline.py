"""The timeline: journal rows in, view-models out (one per MAD pane, plus the session's header).

Headless and shared by live view and replay: `apply()` takes events in seq order and
updates each MAD's view; `JournalTail` reads new rows from a journal being written.
"""
from __future__ import annotations

import copy
import json
import sqlite3
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mads.kernel.journal.reader import row_to_event

HISTORY_SECONDS = 60
HANDLED_KEPT = 5_000
UNSNAPPED = frozenset({"lines", "handled"})
"""Views' fields too big to copy into every replay checkpoint; both carry their seq."""
"""Handled messages each MAD's view keeps, to tie a CPU spike to the messages of its second."""
STAGE_MARKS = {"lppm": "↺", "imperator": "✦"}
"""Before a reply's arrow: ↺ LPPM served a learned phrasing (no LLM), ✦ the Imperator asked the model;
none for a deterministic command (DTR)."""
MAX_LINES = 200_000


@dataclass(slots=True)
class Line:
    """One line of a MAD's traffic, as a pane shows it."""

    seq: int
    wall: float
    kind: str
    """in, out, tool_call, tool_result, llm, error, log, state."""
    text: str
    detail: str | None = None
    """More on demand: a traceback, a full result."""
    ok: bool = True


@dataclass
class MadView:
    """Everything a MAD's pane shows: header figures and its traffic."""

    name: str
    state: str = "starting"
    version: str | None = None
    cpu_percent: float = 0.0
    cpu_seconds: float = 0.0
    messages_per_s: float = 0.0
    mailbox_depth: int = 0
    tokens: int = 0
    tokens_avoided: int = 0
    """Tokens the Thought Engine did not spend (DTR and LPPM answers), from its stage events."""
    held: dict[str, str] = field(default_factory=dict)
    """Messages to this MAD held at a breakpoint: held_id -> text, oldest first."""
    cost: float = 0.0
    errors: int = 0
    tool_calls: int = 0
    cpu_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    cpu_walls: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    """The wall time of each cpu_history sample (each covers the interval before it)."""
    handled: deque[tuple[float, int, float, str]] = field(default_factory=lambda: deque(maxlen=HANDLED_KEPT))
    """The messages (and tool calls) it handled lately: wall, seq, cpu_ms, first line."""
    memory_bytes: int | None = None
    """What the MAD held at the last memory reading (mad_memory), or its own process's RSS when isolated."""
    placement: str = "core"
    """`isolated` when the MAD runs in its own process: its CPU and memory figures are that process's."""
    pid: int | None = None
    node: str | None = None
    """The process hosting it, in a distributed ecosystem (`host:pid:tag`)."""
    lines: list[Line] = field(default_factory=list)
    last_error: str | None = None
    in_flight: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Its LLM calls waiting for their answer, by call number: model, wall (asked at), chunks, text streamed
    so far, note (a retry's wait). Each entry is replaced, never changed in place (replay keeps copies)."""

    def add(self, line: Line) -> None:
        self.lines.append(line)
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args(arguments: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v, 40)}" for k, v in arguments.items() if v is not None)


@dataclass(frozen=True)
class TimelineSnapshot:
    """The Timeline's small state (every figure, state and history, but no pane lines), to return to later."""

    session: dict[str, Any]
    views: dict[str, dict[str, Any]]
    """Each MAD's view fields but its lines, in the order the MADs appeared."""


class Timeline:
    """The state of every pane after the events applied so far."""

    def __init__(self) -> None:
        self.mads: dict[str, MadView] = {}
        self.last_seq = 0
        self.events = 0
        self.session_id: str | None = None
        self.process: dict[str, Any] = {}
        self.process_history: deque[float] = deque(maxlen=HISTORY_SECONDS)
        self.memory: dict[str, Any] = {}
        """The last memory reading (mad_memory), as recorded."""
        self.ecosystem_state = "starting"
        self.starts = 0
        self.ended = False
        self.last_error: str | None = None
        self.notices: list[tuple[str, str]] = []
        """(severity, text) for the app to show once: reloads, failed reloads."""
        self.restart_needed = False
        """A kernel file changed: the ecosystem must restart to use it."""
        self.node: str | None = None
        """The recording process, in a distributed ecosystem."""
        self.nodes: dict[str, dict[str, Any]] = {}
        """Each process's last figures (CPU, RSS), in a distributed ecosystem."""

    def mad(self, name: str) -> MadView:
        view = self.mads.get(name)
        if view is None:
            view = self.mads[name] = MadView(name)
        return view

    def snapshot(self) -> TimelineSnapshot:
        """A copy of the small state; pending notices are left out since they are shown once."""
        session = {k: copy.copy(v) for k, v in vars(self).items() if k not in ("mads", "notices")}
        views = {name: {f.name: copy.copy(getattr(view, f.name)) for f in fields(MadView)
                        if f.name not in UNSNAPPED} for name, view in self.mads.items()}
        return TimelineSnapshot(session, views)

    def restore(self, snapshot: TimelineSnapshot, reuse: Mapping[str, MadView] | None = None) -> None:
        """Return to a snapshot's figures, keeping each MAD's view object (or the one in `reuse`).

        Lines are left as they are: replay moves them itself, since each carries its seq. Handled
        messages past the snapshot are dropped (the events after it bring them back).
        MADs absent from the snapshot are dropped from `mads`.
        """
        for key, value in snapshot.session.items():
            setattr(self, key, copy.copy(value))
        self.notices = []
        mads: dict[str, MadView] = {}
        for name, figures in snapshot.views.items():
            view = self.mads.get(name) or (reuse or {}).get(name) or MadView(name)
            for key, value in figures.items():
                setattr(view, key, copy.copy(value))
            while view.handled and view.handled[-1][1] > self.last_seq:
                view.handled.pop()
            mads[name] = view
        self.mads = mads

    def apply(self, events: list[dict[str, Any]]) -> set[str]:
        """Apply events in seq order; returns the names of the MADs whose view changed ('*' for all)."""
        changed: set[str] = set()
        for event in events:
            if event["seq"] <= self.last_seq:
                continue
            self.last_seq = event["seq"]
            self.events += 1
            handler = getattr(self, f"_on_{event['kind']}", None)
            if handler is not None:
                changed |= handler(event, event["payload"]) or set()
        return changed

    # one method per kind ---------------------------------------------------
    def _on_session_start(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        self.session_id = p.get("session_id", self.session_id)
        self.node = e.get("node", self.node)
        self.starts += 1
        self.ended = False
        for view in self.mads.values():  # a restarted ecosystem answers none of the calls its last life asked
            view.in_flight.clear()
        self.ecosystem_state = "running"
        modules = p.get("modules", {})
        for name in p.get("mads", []):
            self.mad(name)
        self._versions(modules, p.get("versions") or {})
        return {"*"}

    def _versions(self, modules: dict[str, str], versions: dict[str, str]) -> None:
        for module, sha in modules.items():  # recordings from before `versions`: a package module names its MAD
            short = module.rsplit(".", 1)[-1]
            if short in self.mads:
                self.mads[short].version = sha[:8]
        for name, sha in versions.items():
            if name in self.mads:
                self.mads[name].version = sha[:8]

    def _on_session_end(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        self.ended = True
        for view in self.mads.values():
            view.in_flight.clear()
        self.ecosystem_state = "stopped"
        return {"*"}

    def _on_state(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        if e["mad"] is None:
            self.ecosystem_state = p.get("state", self.ecosystem_state)
            for view in self.mads.values():
                if view.state in ("running", "paused"):
                    view.state = p.get("state", view.state)
            return {"*"}
        view = self.mad(e["mad"])
        view.state = p.get("state", view.state)
        if p.get("reason") and view.state in ("failed", "restarting"):
            view.last_error = p["reason"]
            view.add(Line(e["seq"], e["wall"], "state", f"{view.state}: {p['reason']}", ok=False))
        return {view.name}

    def _on_restart(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        view.state = "running"
        view.add(Line(e["seq"], e["wall"], "state", f"restarted ({p.get('reason', '')})"))
        return {view.name}

    def _on_message(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        message = p.get("message", {})
        sender = message.get("sender") or e["mad"]
        content = message.get("content", "")
        error = "error" in message.get("tags", [])
        changed = set()
        if sender in self.mads:
            data = message.get("data")
            stage = data.get("stage") if isinstance(data, dict) else None
            mark = STAGE_MARKS.get(stage.get("name"), "") if isinstance(stage, dict) else ""  # who answered
            self.mads[sender].add(Line(e["seq"], e["wall"], "out", f"{mark}→ {_short(content, 400)}",
                                       detail=content, ok=not error))
            changed.add(sender)
        for name in p.get("recipients", []):
            if name in self.mads:
                self.mads[name].add(Line(e["seq"], e["wall"], "in", f"← {sender}: {_short(content, 400)}",
                                         detail=content))
                changed.add(name)
        return changed

    def _on_break_hit(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        changed = set()
        for name in p.get("mads") or []:
            view = self.mad(name)
            view.held[p["held_id"]] = p.get("content", "")
            view.add(Line(e["seq"], e["wall"], "held", f"⏸ HELD {p['held_id']} {p.get('sender')}: "
                                                       f"{_short(p.get('content', ''), 400)}",
                          detail=p.get("content"), ok=False))
            changed.add(name)
        return changed

    def _released(self, e: dict[str, Any], held_id: str, text: str) -> set[str]:
        changed = set()
        for view in self.mads.values():
            if view.held.pop(held_id, None) is not None:
                view.add(Line(e["seq"], e["wall"], "held", text))
                changed.add(view.name)
        return changed

    def _on_break_continue(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        edited = p.get("delivered") != p.get("original")
        text = f"▶ {p['held_id']} continued" + (f" as: {_short(p.get('delivered', ''), 400)}" if edited else "")
        return self._released(e, p["held_id"], text)

    def _on_break_drop(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        return self._released(e, p["held_id"], f"✗ {p['held_id']} dropped")

    def _on_handled(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        head = p.get("head") or (f"tool call {p['tool']}" if p.get("tool") else "")
        view.handled.append((e["wall"], e["seq"], float(p.get("cpu_ms") or 0.0), head))
        return set()

    def _on_stage(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        view.tokens_avoided += int(p.get("tokens_avoided") or 0)
        return {view.name}

    def _on_tool_call(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        caller = p.get("caller")
        by = f" (from {caller})" if caller and caller != view.name else ""
        view.add(Line(e["seq"], e["wall"], "tool_call", f"⚙ {p.get('tool')} {_args(p.get('arguments', {}))}{by}",
                      detail=json.dumps(p.get("arguments", {}), indent=2, ensure_ascii=False)))
        return {view.name}

    def _on_tool_result(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        took = f" ({p['duration_ms']:.1f} ms)" if isinstance(p.get("duration_ms"), (int, float)) else ""
        if p.get("ok"):
            view.add(Line(e["seq"], e["wall"], "tool_result", f"✓ {p.get('tool')}{took} {_short(p.get('result'))}",
                          detail=json.dumps(p.get("result"), indent=2, ensure_ascii=False, default=str)))
        else:
            view.errors += 1
            view.last_error = p.get("error")
            view.add(Line(e["seq"], e["wall"], "error", f"✗ {p.get('tool')}{took} {p.get('error')}", ok=False))
        return {view.name}

    @property
    def calls_in_flight(self) -> int:
        """LLM calls asked and not yet answered, over every MAD."""
        return sum(len(view.in_flight) for view in self.mads.values())

    def _on_llm_call(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        if "call" not in p:  # recorded before calls were numbered
            return set()
        view = self.mad(p.get("caller") or e["mad"])
        view.in_flight[p["call"]] = {"model": p.get("model"), "wall": e["wall"], "chunks": 0, "text": "",
                                     "note": None}
        return {view.name}

    def _on_llm_chunk(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(p.get("caller") or e["mad"])
        flight = view.in_flight.get(p.get("call", -1))
        if flight is None:
            return set()
        view.in_flight[p["call"]] = {**flight, "chunks": flight["chunks"] + 1,
                                     "text": flight["text"] + str(p.get("text", "")), "note": None}
        return {view.name}

    def _on_llm_retry(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(p.get("caller") or e["mad"])
        note = f"{p.get('error')}: asking again in {p.get('wait_s', 0):g} s (try {p.get('attempt')})"
        flight = view.in_flight.get(p.get("call", -1))
        if flight is not None:
            view.in_flight[p["call"]] = {**flight, "note": note, "retry_wall": e["wall"],
                                         "wait_s": float(p.get("wait_s") or 0)}
        view.add(Line(e["seq"], e["wall"], "llm", f"↻ {p.get('model')} {note}", ok=False))
        return {view.name}

    def _on_llm_cancelled(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(p.get("caller") or e["mad"])
        view.in_flight.pop(p.get("call", -1), None)
        view.add(Line(e["seq"], e["wall"], "error",
                      f"✦ {p.get('model')} cancelled after {float(p.get('elapsed_ms') or 0) / 1000:.1f} s", ok=False))
        return {view.name}

    def _on_llm_result(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(p.get("caller") or e["mad"])
        flight = view.in_flight.pop(p.get("call", -1), None)
        if p.get("error") == "cancelled":  # said by its llm_cancelled event
            return {view.name}
        tokens = p.get("input_tokens", 0) + p.get("output_tokens", 0)
        if p.get("ok", True):
            names = [c["name"] if isinstance(c, dict) else str(c) for c in p.get("tool_calls") or []]
            calls = f" → {', '.join(names)}" if names else ""
            stream = ""
            if "first_token_ms" in p:
                stream = f" · first token {p['first_token_ms'] / 1000:.2f} s"
                if p.get("tokens_per_s"):
                    stream += f" · {p['tokens_per_s']:g} tokens/s"
            view.add(Line(e["seq"], e["wall"], "llm", f"✦ {p.get('model')} {tokens} tokens{stream}{calls}",
                          detail=p.get("text")))
        else:
            took = f" after {(e['wall'] - flight['wall']):.1f} s" if flight is not None else ""
            view.add(Line(e["seq"], e["wall"], "error", f"✦ {p.get('model')} failed{took}: {p.get('error')}",
                          ok=False))
        return {view.name}

    def _on_crash(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"] or "kernel")
        view.errors += 1
        view.last_error = p.get("error")
        view.add(Line(e["seq"], e["wall"], "error", f"✗ crashed in {p.get('handler')}: {p.get('error')}",
                      detail=p.get("traceback"), ok=False))
        return {view.name}

    def _on_blocked(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        view.add(Line(e["seq"], e["wall"], "error",
                      f"⚠ blocked the event loop {p.get('held_ms')} ms in {p.get('handler')}", ok=False))
        return {view.name}

    def _on_log(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        name = e["mad"]
        if name not in self.mads:
            return set()
        level = p.get("level", "info")
        self.mads[name].add(Line(e["seq"], e["wall"], "log", f"· {level}: {_short(p.get('message', ''), 400)}",
                                 detail=p.get("traceback"), ok=level not in ("error", "critical")))
        return {name}

    def _on_sample(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        node = e.get("node")
        if node is not None:  # distributed: each process samples itself
            self.nodes[node] = p.get("process", {})
        if node is None or node == self.node:
            self.process = p.get("process", {})
            self.process_history.append(float(self.process.get("cpu_percent", 0.0)))
        for name, figures in p.get("mads", {}).items():
            view = self.mad(name)
            view.node = node
            view.state = figures.get("state", view.state)
            view.cpu_percent = figures.get("cpu_percent", 0.0)
            view.cpu_seconds = figures.get("cpu_seconds", 0.0)
            view.messages_per_s = figures.get("messages_in_per_s", 0.0) + figures.get("messages_out_per_s", 0.0)
            view.mailbox_depth = figures.get("mailbox_depth", 0)
            view.tokens = figures.get("tokens", 0)
            view.cost = figures.get("cost", 0.0)
            view.tool_calls = figures.get("tool_calls", 0)
            view.errors = max(view.errors, figures.get("errors", 0))
            view.placement = figures.get("placement", "core")
            view.pid = figures.get("pid")
            if view.placement == "isolated" and "rss" in figures:
                view.memory_bytes = int(figures["rss"])
            view.cpu_history.append(view.cpu_percent)
            view.cpu_walls.append(e["wall"])
        return {"*"}

    def _on_memory(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        self.memory = p
        held = p.get("mads", {})
        for name in set(self.mads) | set(held):
            if name != "kernel" and self.mad(name).placement != "isolated":  # (an isolated MAD's is its RSS)
                self.mad(name).memory_bytes = int(held.get(name, {}).get("bytes", 0))
        return {"*"}

    def _on_reload(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        view = self.mad(e["mad"])
        action = p.get("action", "reloaded")
        if action == "retired":
            view.state = "retired"
        else:
            view.version = (p.get("new_hash") or "")[:8] or view.version
        view.add(Line(e["seq"], e["wall"], "state", f"⟳ {action} {view.version or ''}".rstrip()))
        self.notices.append(("information", f"{view.name} {action} ({view.version})"))
        return {view.name}

    def _on_reload_failed(self, e: dict[str, Any], p: dict[str, Any]) -> set[str]:
        if p.get("restart_needed"):
            self.restart_needed = True
            self.notices.append(("warning", p.get("error", "a kernel file changed: restarting")))
            return set()
        view = self.mad(e["mad"] or "kernel")
        view.last_error = p.get("error")
        view.add(Line(e["seq"], e["wall"], "error", f"⟳ reload failed: {p.get('error')}",
                      detail=p.get("traceback"), ok=False))
        self.notices.append(("error", f"reload of {view.name} failed; the old version keeps serving"))
        return {view.name}


class JournalTail:
    """Reads the rows a journal gained since the last read; the file may not exist yet."""

    def __init__(self, path: Path, batch: int = 5000) -> None:
        self.path = path
        self.batch = batch
        self.last_seq = 0
        self._conn: sqlite3.Connection | None = None

    def read(self) -> list[dict[str, Any]]:
        if self._conn is None:
            if not self.path.exists():
                return []
            try:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error:
                return []
        try:
            rows = self._conn.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                      (self.last_seq, self.batch)).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []
        events = [row_to_event(row) for row in rows]
        if events:
            self.last_seq = events[-1]["seq"]
        return events

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
