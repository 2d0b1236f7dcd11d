"""TUI figures: first paint, keypress to screen under 10k events/s, and the worst frame scrolling 100k lines.

Every app runs headless under Textual's `App.run_test()`. A frame is timed when Textual hands
it to the driver (`App._display`, called once the compositor has rendered the update): a
headless driver discards it, a terminal would write it. `pilot.pause()` and `pilot.press()`
are not used for timing: they wait until the process is idle (at least 20 ms, up to 1 s when
it never is, as under load), which would time Textual's test helper rather than the app.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from textual import events
from textual._styles_cache import StylesCache
from textual.app import App, ComposeResult
from textual.widgets import Static

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.timeline import Line
from madtui.widgets.composer import Composer
from madtui.widgets.traffic_view import TrafficView
from mads.kernel.events import Record
from mads.kernel.journal import JournalWriter

from .harness import Sample, figure, percentile

SIZE = (160, 48)
MADS = ["dewey", "fiedler", "horace", "rogers", "turing"]
PANE = "horace"
EVENTS_PER_S = 10_000
SCROLL_LINES = 100_000
BASELINE_LINES = 100
KINDS = ["in", "out", "tool_call", "tool_result", "llm", "error", "state"]
TIMEOUT = 10.0

_perf = time.perf_counter


class Frames:
    """Times an app's frames: `expect(check)`, cause a change, then `await drawn()` for the frame showing it."""

    def __init__(self, app: App[Any]) -> None:
        self._check: Callable[[], bool] | None = None
        self._drawn = asyncio.Event()
        self._at = 0.0
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if self._check is not None and self._check():
                self._at = _perf()
                self._check = None
                self._drawn.set()

        app._display = timed_display  # type: ignore[method-assign]

    def expect(self, check: Callable[[], bool]) -> None:
        """Watch for the first frame drawn while check() holds (set before causing the change)."""
        self._drawn.clear()
        self._check = check

    async def drawn(self, what: str) -> float:
        """perf_counter() time of the frame expected; RuntimeError after the timeout."""
        try:
            await asyncio.wait_for(self._drawn.wait(), TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"no frame showed {what} within {TIMEOUT:g} s") from None
        return self._at


class Trivial(App[None]):
    """One Static: the baseline app."""

    def compose(self) -> ComposeResult:
        yield Static("hello", id="hello")


async def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = _perf() + TIMEOUT
    while not predicate():
        if _perf() > deadline:
            raise RuntimeError(f"{what}: not within {TIMEOUT:g} s")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def isolated() -> AsyncIterator[None]:
    """Run one app so that nothing of it outlives it: each round then pays for one app's heap, as a user does.

    Textual runs thread workers in the loop's default executor, whose threads keep the stderr they were
    started with (`Thread._stderr`, the app's print capture), so the app gets an executor of its own, shut
    down after it. And `StylesCache.get_inner_outer` is an lru_cache(1024) over a method, keeping the
    caches (and rendered strips) of up to 1,024 widgets, so it is cleared after the app.
    """
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="bench-app")
    loop.set_default_executor(executor)
    try:
        yield
    finally:
        loop.set_default_executor(ThreadPoolExecutor())
        await asyncio.to_thread(executor.shutdown)
        StylesCache.get_inner_outer.cache_clear()


def _children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


# first paint ---------------------------------------------------------------------------------
async def first_paint_seconds(make: Callable[[Path], App[Any]], painted: Callable[[App[Any]], bool]) -> float:
    """Seconds from constructing the app to its first frame drawn with `painted(app)`; the app is quit after."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as tmp:
        started = _perf()
        app = make(Path(tmp))
        frames = Frames(app)
        frames.expect(lambda: painted(app))
        async with isolated(), app.run_test(size=SIZE):
            at = await frames.drawn("the first screen")
            if isinstance(app, MadApp):
                await app.action_quit()
            else:
                app.exit()
        await _until(lambda: not _children(), "the ecosystem child exited")
    return at - started


def _mad_app(tmp: Path) -> MadApp:
    environ = {**os.environ, "MAD_MASTER_KEY": "a" * 64}
    return MadApp(HostOptions(home=tmp / "home", sessions=tmp / "sessions", environ=environ))


def _main_painted(app: App[Any]) -> bool:
    main = app.main  # type: ignore[attr-defined]
    return app.screen is main and main.is_mounted and main.query_one(Composer).is_mounted


def _trivial_painted(app: App[Any]) -> bool:
    return bool(app.query("#hello")) and app.query_one("#hello").is_mounted


@figure("tui_first_paint", unit="s", target="value < 2", goal="value < 2", n=1, quick_n=1)
async def tui_first_paint(n: int) -> Sample:
    """Seconds from constructing `MadApp` (which starts its `mad mcp` child) to the main screen's first frame,
    while the child is still starting; each app is quit (child stopped) before the next.

    Baseline: the same for a Textual App of one Static.
    """
    value = [await first_paint_seconds(_mad_app, _main_painted) for _ in range(n)]
    baseline = [await first_paint_seconds(lambda tmp: Trivial(), _trivial_painted) for _ in range(n)]
    return Sample(percentile(value, 50), percentile(baseline, 50))


# an app over a journal we write ------------------------------------------------------------------
@contextlib.asynccontextmanager
async def journal_app(tmp: Path) -> AsyncIterator[tuple[MadApp, JournalWriter, Frames]]:
    """A running headless MadApp (no child) tailing a journal whose session names the five MADs, with their panes."""
    journal = tmp / "sessions" / "bench.db"
    journal.parent.mkdir(parents=True)
    writer = JournalWriter(journal)
    writer.handle(Record("session_start", payload={"session_id": "bench", "command": "bench", "mads": MADS,
                                                  "modules": {}}))
    writer.flush()
    app = MadApp(HostOptions(home=tmp / "home", sessions=journal.parent, journal=journal, environ={}),
                 start_host=False)
    frames = Frames(app)
    try:
        async with isolated(), app.run_test(size=SIZE):
            deck = app.main.deck
            await _until(lambda: sorted(deck.panes) == MADS and all(p.is_mounted for p in deck.panes.values()),
                         "the panes of the recorded MADs")
            yield app, writer, frames
            await app.action_quit()
    finally:
        writer.close()


# keypress latency under load -------------------------------------------------------------------
class Load(threading.Thread):
    """Writes `rate` log events per second for one MAD into the journal, paced in 5 ms steps."""

    def __init__(self, writer: JournalWriter, rate: int) -> None:
        super().__init__(name="bench-load", daemon=True)
        self.writer = writer
        self.rate = rate
        self.written = 0
        self.seconds = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        handle = self.writer.handle
        started = _perf()
        while not self.stop.is_set():
            self.seconds = _perf() - started
            due = int(self.seconds * self.rate)
            while self.written < due:
                handle(Record("log", PANE, payload={"level": "info", "logger": f"mads.{PANE}",
                                                   "message": f"event {self.written}: a log line of ordinary length"}))
                self.written += 1
            self.stop.wait(0.005)


async def keypress_seconds(presses: int, rate: int) -> list[float]:
    """Seconds from each key sent (as the terminal driver sends it) to the frame showing it in the composer."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as tmp:
        async with journal_app(Path(tmp)) as (app, writer, frames):
            composer = app.main.query_one(Composer)
            app.main.deck.panes[PANE].traffic.show_logs = True  # the load's lines are drawn, not filtered out
            load = Load(writer, rate) if rate else None
            if load is not None:
                load.start()
                await _until(lambda: app.timeline.events > rate // 4, "the app showing the load")
            latencies: list[float] = []
            try:
                for i in range(presses):
                    if len(composer.value) >= 60:
                        frames.expect(lambda: composer.value == "")
                        composer.value = ""
                        await frames.drawn("an empty composer")
                    char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
                    expected = composer.value + char
                    key = events.Key(char, char)
                    key.set_sender(app)
                    frames.expect(lambda: composer.value == expected)
                    started = _perf()
                    app._driver.send_message(key)  # type: ignore[union-attr]
                    latencies.append(await frames.drawn(f"{expected!r} typed") - started)
                    await asyncio.sleep(0.01)
            finally:
                if load is not None:
                    load.stop.set()
                    load.join()
            if load is not None:
                achieved = load.written / load.seconds
                if achieved < 0.9 * rate:
                    raise RuntimeError(f"the load wrote {achieved:,.0f} events/s, not {rate:,}")
                writer.flush()
                last = writer.committed_seq
                await _until(lambda: app.timeline.last_seq >= last, "the app catching up with the journal")
    return latencies


@figure("tui_keypress_latency", unit="ms", target="value < 100", goal="value < 100", n=200, quick_n=60)
async def tui_keypress_latency(n: int) -> Sample:
    """p95 ms from a key sent to MadApp to the frame showing it in the composer, over n presses, while
    10k log events/s for one MAD go into the journal the app tails (its pane showing logs).

    Baseline: the same presses with no events written.
    """
    baseline = await keypress_seconds(n, 0)
    value = await keypress_seconds(n, EVENTS_PER_S)
    return Sample(percentile(value, 95) * 1000, percentile(baseline, 95) * 1000)


# scrolling 100k lines ------------------------------------------------------------------------------
def _lines(count: int) -> list[Line]:
    return [Line(i + 2, 1.8e9 + i / 1000, KINDS[i % len(KINDS)],
                 f"← human: message {i} " + "with words enough to fill a wide pane " * 4) for i in range(count)]


def scroll_positions(frames: int, page: int, last: int) -> list[int]:
    """Scroll offsets for `frames` frames: from the top to the end (and back) in steps of at least a page."""
    step = max(page, -(-last // frames))
    positions: list[int] = []
    at, direction = 0, 1
    while len(positions) < frames:
        at = max(0, min(last, at + direction * step))
        if at in (0, last):
            direction = -direction
        positions.append(at)
    return positions


async def scroll_frame_seconds(lines: int, frames_n: int) -> list[float]:
    """Seconds from each scroll of a MAD pane holding `lines` lines to the frame showing its new offset."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as tmp:
        async with journal_app(Path(tmp)) as (app, _, frames):
            pane = app.main.deck.panes[PANE]
            view: TrafficView = pane.traffic
            app.timeline.mads[PANE].lines.extend(_lines(lines))
            frames.expect(lambda: view.max_scroll_y >= lines - view.size.height)
            pane.update_view()
            await frames.drawn(f"{lines} lines")
            frames.expect(lambda: view.scroll_y == 0)
            view.scroll_home(animate=False, immediate=True)
            await frames.drawn("the top line")
            seconds: list[float] = []
            last = int(view.max_scroll_y)
            for y in scroll_positions(frames_n, view.scrollable_content_region.height, last):
                frames.expect(lambda: view.scroll_y == y)
                started = _perf()
                view.scroll_to(y=y, animate=False, immediate=True)
                seconds.append(await frames.drawn(f"line {y} at the top") - started)
    return seconds


@figure("tui_scroll_100k", unit="ms", target="value < 100", n=500, quick_n=60)
async def tui_scroll_100k(n: int) -> Sample:
    """Worst ms from a scroll of a MAD pane holding 100k lines to the frame showing it, over n scrolls of at least
    a page from the top to the end (and back, when n exceeds the pages).

    Baseline: the same n scrolls over a pane of 100 lines (end to end and back).
    """
    baseline = await scroll_frame_seconds(BASELINE_LINES, n)
    value = await scroll_frame_seconds(SCROLL_LINES, n)
    return Sample(max(value) * 1000, max(baseline) * 1000)
