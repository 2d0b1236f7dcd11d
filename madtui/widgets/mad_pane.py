"""One MAD's pane: its header figures over its traffic."""
from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.timer import Timer

from ..timeline import MadView
from .sparkline_header import PaneHeader
from .traffic_view import TrafficView


TICK_SECONDS = 0.25
"""How often a call in flight's seconds are redrawn."""


class MadPane(Vertical, can_focus=False):
    """Header (name, state, version, CPU, messages/s, mailbox, tokens, cost, sparkline) and traffic."""

    DEFAULT_CSS = """
    MadPane { height: 1fr; }
    MadPane > TrafficView { height: 1fr; }
    """

    number: reactive[int | None] = reactive(None)
    """The number key that zooms this pane."""

    def __init__(self, view: MadView, **kwargs: object) -> None:
        super().__init__(id=f"pane-{view.name}", classes="mad-pane", **kwargs)  # type: ignore[arg-type]
        self.view = view
        self.border_title = view.name
        self._tick: Timer | None = None

    def compose(self) -> ComposeResult:
        yield PaneHeader()
        yield TrafficView(self.view.lines)

    def on_mount(self) -> None:
        self.update_view()

    @property
    def traffic(self) -> TrafficView:
        return self.query_one(TrafficView)

    def update_view(self) -> None:
        """Show the view's latest figures and lines (nothing while its parts are not there: composing, closing)."""
        headers, traffic = self.query_children(PaneHeader), self.query_children(TrafficView)
        if not headers or not traffic:
            return
        headers.first().show(self.view, self.number)
        traffic.first().take_in_lines()
        self.show_in_flight()
        count = len(self.view.lines)
        self.border_subtitle = f"{count} line" if count == 1 else f"{count} lines"

    def show_in_flight(self) -> None:
        """The LLM calls under way, each with its model, seconds so far and tokens streamed, and the text so far;
        ticks while there are any (the clock is the app's: now when live, the cursor in replay)."""
        traffic = self.query_children(TrafficView)
        if not traffic:
            return
        replay = getattr(self.app, "pane_clock", None)
        now = replay() if replay is not None else time.time()
        calls = []
        for flight in self.view.in_flight.values():
            elapsed = max(0.0, now - flight["wall"])
            head = f"✦ {flight['model']} thinking · {elapsed:.1f} s · {flight['chunks']} tokens"
            if flight.get("note"):
                left = flight.get("wait_s", 0.0) - (now - flight.get("retry_wall", now))
                head += f" · {flight['note']}" + (f" ({left:.0f} s left)" if left >= 1 else "")
            calls.append((head if replay is not None else head + " · esc on this pane cancels", flight["text"]))
        traffic.first().show_live(calls)
        if calls and self._tick is None:
            self._tick = self.set_interval(TICK_SECONDS, self.show_in_flight)
        elif not calls and self._tick is not None:
            self._tick.stop()
            self._tick = None
