"""Replay: one time cursor over a recorded journal, with the Timeline of every pane at the cursor.

Headless, shared by `mad replay` and the benchmarks. Opening reads a few indexed rows, not the
file; events are read by seq in windows of WINDOW and kept parsed in a small cache. Stepping
forward applies events. Stepping back restores the nearest checkpoint of the Timeline's small
state (one every CHECKPOINT_EVERY seqs, taken as the cursor first passes) and re-applies the
few events after it. Pane lines carry their seq, so lines past the cursor are parked rather
than dropped: any position already visited is reached again in a few milliseconds.
"""
from __future__ import annotations

import gc
import json
import re
import sqlite3
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mads.kernel.errors import UsageError
from mads.kernel.journal.reader import parse_duration
from mads.kernel.journal.store import connect

from .timeline import Line, MadView, Timeline, TimelineSnapshot

WINDOW = 2000
"""Events read from the journal at a time."""
CACHED_WINDOWS = 8
CHECKPOINT_EVERY = 500
"""Seqs between two checkpoints: a step back re-applies at most this many events."""
FREEZE_AFTER = 20_000
"""After applying this many events, what they made is moved out of the cyclic GC's reach (gc.freeze, which
costs nothing): a million pane lines would otherwise make each full collection a pause of 100-300 ms."""
DRAWN_KINDS = frozenset(name[4:] for name in dir(Timeline) if name.startswith("_on_"))
"""Kinds the Timeline draws; the payloads of other kinds are not parsed (payload None)."""

_ANY = None
MARKS: dict[str, list[tuple[str, str | None]]] = {
    "error": [
        ("crash", _ANY), ("reload_failed", _ANY), ("blocked", _ANY),
        ("tool_result", "instr(payload, 'false') AND json_extract(payload, '$.ok') = 0"),
        ("llm_result", "instr(payload, 'false') AND json_extract(payload, '$.ok') = 0"),
        ("state", "json_extract(payload, '$.state') = 'failed'"),
        ("message", "instr(payload, '\"error\"') AND EXISTS "
                    "(SELECT 1 FROM json_each(payload, '$.message.tags') WHERE value = 'error')"),
    ],
    "crash": [("crash", _ANY)],
    "reload": [("reload", _ANY), ("reload_failed", _ANY)],
}
"""What each jump looks for: (kind, extra condition) pairs, each found through the (kind, seq) index."""

_COLUMNS = "seq, wall, kind, mad, conversation, correlation_id, payload"
_VIEW_FIGURES = tuple(f.name for f in fields(MadView) if f.name not in ("name", "lines"))


def _seq(line: Line) -> int:
    return line.seq


class ReplayCursor:
    """A position in a recording (the seq of the last event applied) and the Timeline at that position."""

    def __init__(self, path: Path, *, window: int = WINDOW, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.path = Path(path)
        self.window = window
        self.checkpoint_every = checkpoint_every
        try:
            self._conn = connect(self.path, readonly=True)
            first, last = self._conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path} is not a mad journal ({exc})") from None
        if first is None:
            self._conn.close()
            raise UsageError(f"{self.path} holds no events")
        self.first_seq: int = first
        self.last_seq: int = last
        self.session_id: str = json.loads(meta["session_id"]) if "session_id" in meta else self.path.stem
        self.rows_read = 0
        """Rows fetched from the journal so far (opening reads one window)."""
        self._windows: OrderedDict[int, tuple[list[int], list[dict[str, Any]]]] = OrderedDict()
        self.timeline = Timeline()
        self.position = 0
        """The seq of the last event applied; every event up to it is shown."""
        self.frontier = 0
        """The furthest position reached: checkpoints exist up to it, and parked lines lie before it."""
        self._checkpoints: dict[int, TimelineSnapshot] = {0: self.timeline.snapshot()}
        self._boundaries: list[int] = [0]
        self._views: dict[str, MadView] = {}
        self._parked: dict[str, list[Line]] = {}
        self._unfrozen = 0
        self._found: dict[tuple[str, str | None, int], tuple[int, int | None]] = {}
        """Per jump query, (searched from, found): answers any position between the two without SQL."""
        self.first_wall: float = self.event(first)["wall"]
        self.last_wall: float = self._conn.execute("SELECT max(wall) FROM events").fetchone()[0]
        self.seek(first)

    def close(self) -> None:
        self._conn.close()

    # reading ---------------------------------------------------------------------
    def _window(self, index: int) -> tuple[list[int], list[dict[str, Any]]]:
        """The events of one window (seqs index*window+1 .. (index+1)*window), parsed, from the cache."""
        cached = self._windows.get(index)
        if cached is not None:
            self._windows.move_to_end(index)
            return cached
        low = index * self.window
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
                                  (low, low + self.window)).fetchall()
        self.rows_read += len(rows)
        events = [{"seq": seq, "wall": wall, "kind": kind, "mad": mad, "conversation": conversation,
                   "correlation_id": correlation_id,
                   "payload": json.loads(payload) if kind in DRAWN_KINDS else None}
                  for seq, wall, kind, mad, conversation, correlation_id, payload in rows]
        cached = ([e["seq"] for e in events], events)
        self._windows[index] = cached
        if len(self._windows) > CACHED_WINDOWS:
            self._windows.popitem(last=False)
        return cached

    def events(self, after: int, upto: int) -> Iterator[dict[str, Any]]:
        """The events with after < seq <= upto, in seq order, read window by window."""
        index = max(after, 0) // self.window
        while index * self.window < upto:
            seqs, events = self._window(index)
            start = bisect_right(seqs, after)
            stop = bisect_right(seqs, upto)
            yield from events[start:stop]
            index += 1

    def event(self, seq: int) -> dict[str, Any]:
        """The event with this seq (KeyError when the journal has none)."""
        seqs, events = self._window((seq - 1) // self.window)
        at = bisect_right(seqs, seq) - 1
        if at < 0 or seqs[at] != seq:
            raise KeyError(seq)
        return events[at]

    @property
    def current(self) -> dict[str, Any]:
        """The event at the cursor."""
        return self.event(self.position)

    @property
    def wall(self) -> float:
        """The time of the event at the cursor."""
        return float(self.current["wall"])

    # moving ----------------------------------------------------------------------
    def seek(self, target: int, *, limit: int | None = None) -> set[str]:
        """Move to the last event with seq <= target; returns the MADs whose pane changed ('*': all).

        With `limit`, at most that many seqs beyond the frontier are applied (the caller repeats
        until `position` is the target), so a long first pass can show progress and be cancelled.
        """
        target = max(self.first_seq, min(self.last_seq, target))
        if limit is not None:
            target = min(target, max(self.frontier, self.position) + limit)
        target = self.floor(target)
        if target == self.position:
            return set()
        nearest = self._boundaries[bisect_right(self._boundaries, target) - 1]
        changed: set[str] = set()
        if not self.position <= target or self.position < nearest:
            self._restore(nearest)
            changed.add("*")
        changed |= self._forward(target)
        self._settle(target)
        return changed

    def floor(self, seq: int) -> int:
        """The last seq at or before this one that the journal holds (seqs lost with a failed batch leave gaps)."""
        seqs, _ = self._window((seq - 1) // self.window)
        at = bisect_right(seqs, seq) - 1
        if at >= 0:
            return seqs[at]
        row = self._conn.execute("SELECT max(seq) FROM events WHERE seq <= ?", (seq,)).fetchone()
        return row[0] if row[0] is not None else self.first_seq

    def step(self, count: int = 1) -> set[str]:
        """Move `count` events forward (negative: back)."""
        if count == 0:
            return set()
        if count > 0:
            seqs = self._next_seqs(self.position, count)
            return self.seek(seqs[-1]) if seqs else set()
        row = self._conn.execute("SELECT seq FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                                 (self.position, -count - 1)).fetchone()
        return self.seek(row[0] if row else self.first_seq)

    def _next_seqs(self, after: int, count: int) -> list[int]:
        found: list[int] = []
        index = after // self.window
        while len(found) < count and index * self.window < self.last_seq:
            seqs, _ = self._window(index)
            found += seqs[bisect_right(seqs, after):][: count - len(found)]
            index += 1
        return found

    def seq_at(self, wall: float) -> int:
        """The seq of the last event at or before this time (the first event when none is)."""
        row = self._conn.execute("SELECT seq FROM events WHERE wall <= ? ORDER BY wall DESC, seq DESC LIMIT 1",
                                 (wall,)).fetchone()
        return row[0] if row else self.first_seq

    def step_seconds(self, seconds: float) -> set[str]:
        """Move to the state `seconds` later (earlier when negative); at least one event when there is one."""
        target = self.seq_at(self.wall + seconds)
        if seconds > 0 and target <= self.position:
            return self.step(1)
        if seconds < 0 and target >= self.position:
            return self.step(-1)
        return self.seek(target)

    def advance(self, until_wall: float, limit: int) -> set[str]:
        """Apply the next events whose time is at or before `until_wall`, at most `limit` of them (playback)."""
        last = self.position
        taken = 0
        for event in self.events(self.position, self.last_seq):
            if event["wall"] > until_wall or taken >= limit:
                break
            last = event["seq"]
            taken += 1
        return self.seek(last) if last != self.position else set()

    @property
    def at_end(self) -> bool:
        return self.position >= self.last_seq

    # jumps -----------------------------------------------------------------------
    def find(self, mark: str, direction: int) -> int | None:
        """The seq of the next (direction 1) or previous (-1) event of a mark: error, crash or reload."""
        if mark not in MARKS:
            raise UsageError(f"no mark named {mark!r} (the marks are {', '.join(MARKS)})")
        found = [seq for kind, condition in MARKS[mark]
                 if (seq := self._find(kind, condition, direction)) is not None]
        if not found:
            return None
        return min(found) if direction > 0 else max(found)

    def _find(self, kind: str, condition: str | None, direction: int) -> int | None:
        at = self.position
        key = (kind, condition, direction)
        known = self._found.get(key)
        if known is not None:
            start, seq = known
            ahead = direction > 0
            if (start <= at if ahead else start >= at) and (seq is None or (at < seq if ahead else at > seq)):
                return seq
        compare, order = (">", "ASC") if direction > 0 else ("<", "DESC")
        extra = f" AND {condition}" if condition else ""
        row = self._conn.execute(f"SELECT seq FROM events WHERE kind = ? AND seq {compare} ?{extra} "
                                 f"ORDER BY seq {order} LIMIT 1", (kind, at)).fetchone()
        seq = row[0] if row else None
        self._found[key] = (at, seq)
        return seq

    # checkpoints and lines -------------------------------------------------------
    def _forward(self, target: int) -> set[str]:
        """Apply the events after the position up to target, taking checkpoints at the boundaries passed."""
        changed: set[str] = set()
        every = self.checkpoint_every
        while self.position < target:
            stop = min(target, (self.position // every + 1) * every)
            events = list(self.events(self.position, stop))
            self._unfrozen += len(events)
            changed |= self.timeline.apply(events)
            self.position = stop
            if stop % every == 0 and stop not in self._checkpoints:
                self._checkpoints[stop] = self.timeline.snapshot()
                self._boundaries.append(stop)
        self.frontier = max(self.frontier, self.position)
        if self._unfrozen >= FREEZE_AFTER:
            gc.freeze()
            self._unfrozen = 0
        return changed

    def _restore(self, boundary: int) -> None:
        """Go back (or ahead, within the frontier) to a checkpoint: its figures, and the lines up to it."""
        self._know_views()
        self.timeline.restore(self._checkpoints[boundary], self._views)
        for name, view in self._views.items():
            lines = view.lines
            parked = self._parked.setdefault(name, [])
            cut = bisect_right(lines, boundary, key=_seq)
            if cut < len(lines):
                parked[0:0] = lines[cut:]
                del lines[cut:]
            take = bisect_right(parked, boundary, key=_seq)
            if take:
                lines.extend(parked[:take])
                del parked[:take]
        self.position = boundary

    def _settle(self, target: int) -> None:
        """After applying up to target: adopt views re-created on the way, drop parked lines applied again."""
        for name, view in list(self.timeline.mads.items()):
            known = self._views.setdefault(name, view)
            if known is not view:  # re-created after a restore that dropped it: panes keep the first object
                for f in _VIEW_FIGURES:
                    setattr(known, f, getattr(view, f))
                known.lines.extend(view.lines)
                self.timeline.mads[name] = known
        for parked in self._parked.values():
            drop = bisect_right(parked, target, key=_seq)
            if drop:
                del parked[:drop]
        self.position = target

    def _know_views(self) -> None:
        for name, view in self.timeline.mads.items():
            self._views.setdefault(name, view)

    def statistics(self) -> dict[str, int]:
        """What the cursor holds: rows read, windows cached, checkpoints and parked lines."""
        return {"rows_read": self.rows_read, "windows": len(self._windows), "checkpoints": len(self._checkpoints),
                "parked_lines": sum(len(p) for p in self._parked.values()), "frontier": self.frontier}


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")


def _seconds(text: str) -> float:
    """Seconds in '90', '1.5', '5m', '1:30' or '1:02:03'."""
    if ":" in text:
        parts = [float(p) for p in text.split(":")]
        if len(parts) > 3:
            raise ValueError(text)
        total = 0.0
        for part in parts:
            total = total * 60 + part
        return total
    return parse_duration(text)


def parse_position(text: str, cursor: ReplayCursor) -> int:
    """The seq a go-to text names: `#1234` or `1234` (an event), `+90`/`+5m`/`+1:30` (after the start),
    `12:03:45` (a UTC time of day), an ISO time, `start` or `end`. UsageError when it names nothing."""
    text = text.strip()
    if not text:
        raise UsageError("type a time (12:03:45), +seconds from the start (+90), or an event (#1234)")
    lowered = text.lower()
    if lowered in ("start", "begin", "first"):
        return cursor.first_seq
    if lowered in ("end", "last"):
        return cursor.last_seq
    number = text[1:] if text.startswith("#") else text
    if number.isdigit():
        return int(number)
    try:
        if text.startswith("+"):
            return cursor.seq_at(cursor.first_wall + _seconds(text[1:].strip()))
        clock = _CLOCK.match(text)
        if clock:
            hours, minutes, seconds = int(clock.group(1)), int(clock.group(2)), float(clock.group(3) or 0)
            start = datetime.fromtimestamp(cursor.first_wall, timezone.utc)
            moment = start.replace(hour=hours, minute=minutes, second=0, microsecond=0) + timedelta(seconds=seconds)
            if moment.timestamp() < cursor.first_wall - 1:
                moment += timedelta(days=1)  # a session that ran past midnight
            return cursor.seq_at(moment.timestamp())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, UsageError):
        raise UsageError(f"not a time or an event: {text!r} (12:03:45, +90, +5m, #1234, start, end)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return cursor.seq_at(moment.timestamp())


def clock(wall: float) -> str:
    """A time as the header shows it: UTC, to the millisecond."""
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def elapsed(seconds: float) -> str:
    """Seconds since the start as +H:MM:SS."""
    whole = int(max(seconds, 0))
    return f"+{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
