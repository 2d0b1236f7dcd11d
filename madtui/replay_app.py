"""`mad replay`: the workbench's panes and resource graphs over a recording, all moved by one time cursor."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from .completion import Completer
from .replay import ReplayCursor
from .screens.replay import ReplayResourcesScreen, ReplayScreen
from .screens.resources import ResourcesScreen
from .timeline import Timeline
from .widgets.replay_bar import CursorState, ReplayBar
from .widgets.status_bar import StatusBar

SPEEDS: tuple[float | None, ...] = (1.0, 10.0, 100.0, None)
"""Playback speeds; None is as fast as the screen keeps up."""
TICK = 0.05
"""Seconds between two playback steps."""
TICK_BUDGET = 0.035
"""Seconds of applying events a playback step may take at max speed."""
SEEK_CHUNK = 5_000
"""New events applied between two screen updates when a seek goes past where the cursor has been."""


def speed_label(speed: float | None) -> str:
    return "max" if speed is None else f"{speed:g}x"


class ReplayApp(App[int]):
    """The panes of `mad tui` over a recording: step, play at a speed, jump to errors, crashes, reloads or a time."""

    CSS_PATH = "app.tcss"
    TITLE = "mad replay"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "keys", "Keys"),
        Binding("question_mark", "keys", "Keys", show=False),
        Binding("space", "play", "Play/Pause"),
        Binding("full_stop", "step(1)", "Step"),
        Binding("comma", "step(-1)", "Step back", show=False),
        Binding("greater_than_sign", "seconds(1)", "One second on", show=False),
        Binding("less_than_sign", "seconds(-1)", "One second back", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster", show=False),
        Binding("minus", "speed(-1)", "Slower", show=False),
        Binding("e", "jump('error', 1)", "Next error"),
        Binding("E,shift+e", "jump('error', -1)", "Previous error", show=False),
        Binding("c", "jump('crash', 1)", "Next crash", show=False),
        Binding("C,shift+c", "jump('crash', -1)", "Previous crash", show=False),
        Binding("r", "jump('reload', 1)", "Next reload", show=False),
        Binding("R,shift+r", "jump('reload', -1)", "Previous reload", show=False),
        Binding("g", "go_to", "Go to"),
        Binding("escape", "stop_seek", "Stop seeking", show=False),
        Binding("f2", "resources", "Resources"),
    ]

    def __init__(self, journal: Path, *, cursor: ReplayCursor | None = None, start_at: int | None = None) -> None:
        super().__init__()
        self.start_at = start_at
        """An event to move the cursor to once the screen is up (`mad replay --at`)."""
        self.journal = Path(journal)
        self.cursor = cursor
        """Opened on mount unless given (the CLI opens it first, so a bad file is an error before the screen)."""
        self._owns_cursor = cursor is None
        self.main = ReplayScreen(Completer())
        self.playing = False
        self.speed_index = 0
        self.seeking: float | None = None
        self._play_clock = 0.0
        self._last_tick = 0.0
        self._per_tick = 500
        self._moving = asyncio.Lock()
        self._seek_number = 0
        """Which seek may go on; a move or esc bumps it, and the running seek stops at its next chunk."""

    @property
    def timeline(self) -> Timeline:
        assert self.cursor is not None
        return self.cursor.timeline

    @property
    def speed(self) -> float | None:
        return SPEEDS[self.speed_index]

    async def on_mount(self) -> None:
        if self.cursor is None:
            self.cursor = ReplayCursor(self.journal)
        self.sub_title = self.cursor.session_id
        await self.push_screen(self.main)
        self._timer = self.set_interval(TICK, self._tick, pause=True)
        await self.show_cursor({"*"})
        if self.start_at:
            await self.move(self.start_at)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals here
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)  # the terminal given back

    def on_unmount(self) -> None:
        if self.cursor is not None and self._owns_cursor:
            self.cursor.close()

    # drawing the cursor ------------------------------------------------------------
    async def show_cursor(self, changed: set[str]) -> None:
        """Draw the Timeline at the cursor: panes (added or removed to match), bars, status, resources."""
        deck = self.main.deck
        views = {name: view for name, view in self.timeline.mads.items() if name != "kernel"}
        wanted, shown = list(views), list(deck.panes)
        keep = 0
        while (keep < min(len(wanted), len(shown)) and wanted[keep] == shown[keep]
               and deck.panes[shown[keep]].view is views[wanted[keep]]):
            keep += 1
        for name in shown[keep:]:  # panes of MADs not there yet at the cursor, or out of order
            removal = deck.remove_mad(name)
            if removal is not None:
                await removal
        for name in wanted[keep:]:
            deck.add_mad(views[name])
        names = list(deck.panes) if "*" in changed else [n for n in changed if n in deck.panes]
        for name in names:
            pane = deck.panes[name]
            if pane.is_mounted:
                pane.update_view()
        self.timeline.notices.clear()
        self.refresh_bars()
        if isinstance(self.screen, ResourcesScreen):
            self.screen.refresh_rows()

    def pane_clock(self) -> float:
        """The time the panes show (an LLM call in flight's seconds so far): the cursor's."""
        return self.cursor_state().wall if self.cursor is not None else 0.0

    def cursor_state(self) -> CursorState:
        cursor = self.cursor
        assert cursor is not None
        event = cursor.current
        wall = max(cursor.wall, self._play_clock) if self.playing and self.speed is not None else cursor.wall
        return CursorState(wall, cursor.first_wall, cursor.position, cursor.last_seq, event["kind"], event["mad"],
                           self.playing, speed_label(self.speed), self.seeking)

    def refresh_bars(self) -> None:
        state = self.cursor_state()
        for screen in self.screen_stack:
            for bar in screen.query(ReplayBar):
                bar.show(state)
        if self.main.is_mounted:
            self.main.query_one(StatusBar).show(self.timeline, "recorded", None, 0)

    # moving ------------------------------------------------------------------------
    async def moved(self, move: Callable[[ReplayCursor], set[str]]) -> None:
        """Move the cursor and draw where it is; one move at a time (keys, playback and seeks take turns)."""
        assert self.cursor is not None
        async with self._moving:
            changed = move(self.cursor)
            await self.show_cursor(changed)

    async def move(self, target: int) -> None:
        """Move the cursor to an event; past where it has been, in chunks that keep the screen alive."""
        assert self.cursor is not None
        self.action_stop_seek()
        if target - max(self.cursor.frontier, self.cursor.position) > SEEK_CHUNK:
            self.seek_far(target, self._seek_number)
            return
        await self.moved(lambda cursor: cursor.seek(target))

    @work(group="seek")
    async def seek_far(self, target: int, number: int) -> None:
        """A long first pass, SEEK_CHUNK events at a time, with its progress in the bar, until another move or esc."""
        cursor = self.cursor
        assert cursor is not None
        goal = cursor.floor(target)
        start = cursor.position
        try:
            while cursor.position != goal and number == self._seek_number:
                self.seeking = (cursor.position - start) / max(goal - start, 1)
                await self.moved(lambda cursor: cursor.seek(goal, limit=SEEK_CHUNK))
                await asyncio.sleep(0)
        finally:
            if number == self._seek_number:
                self.seeking = None
                self.refresh_bars()

    def action_stop_seek(self) -> None:
        """Stop a long seek where it is (each chunk leaves the cursor at an event)."""
        self._seek_number += 1
        if self.seeking is not None:
            self.seeking = None
            self.refresh_bars()

    async def action_step(self, count: int) -> None:
        self.pause()
        self.action_stop_seek()
        await self.moved(lambda cursor: cursor.step(count))

    async def action_seconds(self, seconds: float) -> None:
        self.pause()
        self.action_stop_seek()
        await self.moved(lambda cursor: cursor.step_seconds(seconds))

    async def action_jump(self, mark: str, direction: int) -> None:
        assert self.cursor is not None
        self.pause()
        seq = self.cursor.find(mark, direction)
        if seq is None:
            where = "after" if direction > 0 else "before"
            self.notify(f"no {mark} {where} event {self.cursor.position:,}", severity="warning")
            return
        event = self.cursor.event(seq)
        self.notify(f"#{seq:,} {event['kind']}" + (f" in {event['mad']}" if event["mad"] else ""),
                    timeout=3, markup=False)
        await self.move(seq)
        if event["mad"] in self.main.deck.panes:
            self.main.deck.show_pane(event["mad"])  # on a narrow screen, turn to the page of the MAD it is about

    def action_go_to(self) -> None:
        from .screens.goto import GoToScreen

        assert self.cursor is not None

        async def chosen(seq: int | None) -> None:
            if seq is not None:
                self.pause()
                await self.move(seq)

        self.push_screen(GoToScreen(self.cursor), chosen)

    # playing -----------------------------------------------------------------------
    def action_play(self) -> None:
        assert self.cursor is not None
        if self.playing:
            self.pause()
            return
        if self.cursor.at_end:
            self.notify("at the end of the recording: , steps back, g goes to a time", severity="warning")
            return
        self.playing = True
        self._play_clock = self.cursor.wall
        self._last_tick = time.monotonic()
        self._timer.resume()
        self.refresh_bars()

    def pause(self) -> None:
        if self.playing:
            self.playing = False
            self._timer.pause()
            self.refresh_bars()

    def action_speed(self, step: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + step))
        if self.cursor is not None:
            self._play_clock = self.cursor.wall
        self.refresh_bars()

    async def _tick(self) -> None:
        """One playback step: the events up to the play clock (at max speed, as many as the budget allows)."""
        if self.cursor is None or not self.playing:
            return
        now = time.monotonic()
        lapse, self._last_tick = now - self._last_tick, now
        if self.speed is not None:
            self._play_clock += lapse * self.speed
        until = float("inf") if self.speed is None else self._play_clock
        before = self.cursor.position
        started = time.perf_counter()
        await self.moved(lambda cursor: cursor.advance(until, self._per_tick))
        took = time.perf_counter() - started
        if self.cursor.position - before >= self._per_tick:  # held back: as many as fit in the budget next time
            self._per_tick = max(20, min(20_000, int(self._per_tick * TICK_BUDGET / max(took, 1e-4))))
        if self.cursor.at_end:
            self.pause()
            self.notify("the end of the recording", timeout=3)

    # screens -----------------------------------------------------------------------
    def action_resources(self) -> None:
        self.push_screen(ReplayResourcesScreen(self.timeline))

    def action_keys(self) -> None:
        """F1 and ?: the workbench's keys, grouped, then those of the focused widget."""
        from .screens.keys import KeysScreen

        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.focused))

    def open_at(self, seq: int) -> None:
        """Back to the panes, the cursor at this event (a message found from a CPU spike)."""
        while len(self.screen_stack) > 2:  # the default screen, then the panes
            self.pop_screen()
        self.run_worker(self.move(seq), group="move")
