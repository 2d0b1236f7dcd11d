"""The replay header: where the cursor is (UTC time, time since the start, event number) and how it moves."""
from __future__ import annotations

from dataclasses import dataclass

from textual.markup import escape
from textual.widgets import Static

from ..replay import clock, elapsed


@dataclass(frozen=True)
class CursorState:
    """What the bar shows: the cursor's time and event, the playback and any seek in progress."""

    wall: float
    first_wall: float
    seq: int
    last_seq: int
    kind: str
    mad: str | None
    playing: bool
    speed: str
    seeking: float | None = None
    """How far a long seek has got (0..1), or None."""


class ReplayBar(Static):
    """One line: `‖ paused 1x · 12:00:05.123 UTC +0:00:05 · event 7/21 · crash rogers`."""

    DEFAULT_CSS = "ReplayBar { height: 1; }"

    def show(self, state: CursorState) -> None:
        mark = "[b]▶ playing[/b]" if state.playing else "‖ paused"
        where = f"{clock(state.wall)} UTC {elapsed(state.wall - state.first_wall)}"
        text = f"{mark} {state.speed} · {where} · event {state.seq:,}/{state.last_seq:,}"
        if state.seeking is not None:
            text += f" · seeking {state.seeking:.0%} (esc stops)"
        else:
            text += f" · {escape(state.kind)}" + (f" {escape(state.mad)}" if state.mad else "")
        self.set_class(state.playing, "-playing")
        self.update(text)
