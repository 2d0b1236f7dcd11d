"""The workbench app: hosts the ecosystem child, tails its journal, and draws every MAD side by side."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SuspendNotSupported
from textual.binding import Binding
from textual.worker import Worker, get_current_worker

from mads.kernel.message import parse

from .commands import ToolCommands
from .completion import Completer
from .host import Host, HostOptions, HostUnavailable, ProgressCallback, ToolCallError
from .messages import HostChanged, JournalEvents
from .screens.main import MainScreen
from .screens.resources import ResourcesScreen
from .timeline import JournalTail, Timeline
from .widgets.composer import Composer
from .widgets.pane_deck import PaneDeck
from .widgets.status_bar import StatusBar

TAIL_INTERVAL = 0.05
LIVE_TAIL_INTERVAL = 0.01
"""While an LLM call is in flight the journal is read more often: its reply streams into a pane."""


class MadApp(App[int]):
    """`mad tui`: one screen of MAD panes over a live ecosystem (an MCP client of a `mad mcp` child)."""

    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ToolCommands}
    TITLE = "mad"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+t", "tool_palette", "Tools", priority=True),
        Binding("f1", "keys", "Keys"),
        Binding("question_mark", "keys", "Keys", show=False),
        Binding("f2", "resources", "Resources"),
        Binding("f5", "pause", "Pause/Resume"),
        Binding("f7", "restart_ecosystem", "Restart all"),
        Binding("f8", "sessions", "Sessions"),
        Binding("f9", "regen", "Regen"),
    ]

    def __init__(self, options: HostOptions, *, start_host: bool = True) -> None:
        super().__init__()
        self.host_options = options
        self.host = Host(options, on_change=self._host_changed)
        self.timeline = Timeline()
        self.completer = Completer()
        self.tools: list[dict[str, Any]] = []
        self.paused = False
        self.call_history: list[tuple[str, dict[str, Any]]] = []
        self.start_host = start_host
        self._stop_tail = threading.Event()
        self._tail: Worker[None] | None = None
        self.main = MainScreen(self.completer, options.environ.get("MAD_DEFAULT_MAD") or "fiedler")

    @property
    def journal(self) -> Path:
        return self.host.journal

    def on_mount(self) -> None:
        # Full garbage collections over a big, long-lived heap (100k pane lines) stall frames by 100+ ms:
        # keep what exists now out of them, and let young objects pile up longer before collecting.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.push_screen(self.main)
        self.refresh_status()
        if self.start_host:
            self.host.start()
            self.wait_for_host()
        self._tail = self.tail_journal()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows, a thread)
            # `kill` or a process manager quits as ctrl+q does: the child stopped, the terminal given back
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminated)

    def _terminated(self) -> None:
        self.run_worker(self.action_quit(), group="quit", exclusive=True)

    # the host ----------------------------------------------------------------
    def _host_changed(self, state: str, error: str | None) -> None:
        self.post_message(HostChanged(state, error))

    def on_host_changed(self, event: HostChanged) -> None:
        if event.state == "running":
            self.tools = self.host.tools
            self.completer.set_tools(self.tools)
        if event.state == "failed":
            self.notify(f"the ecosystem stopped after repeated failures: {event.error}", severity="error",
                        timeout=30, markup=False)
        elif event.state == "restarting" and event.error:
            self.notify(f"the ecosystem died: {event.error}; restarting", severity="warning", markup=False)
        self.refresh_status()

    @work(exclusive=True, group="host-ready")
    async def wait_for_host(self) -> None:
        try:
            await self.host.wait_ready()
        except TimeoutError:
            self.notify("the ecosystem did not start in time; see the banner", severity="error")

    async def call(self, name: str, arguments: dict[str, Any] | None = None,
                   progress: ProgressCallback | None = None) -> Any:
        """Call a tool in the ecosystem (ToolCallError / HostUnavailable on failure)."""
        return await self.host.call(name, arguments, progress)

    # the journal ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="tail")
    def tail_journal(self) -> None:
        """Read new journal rows and hand them to the app, one batch at a time."""
        tail = JournalTail(self.journal)
        worker = get_current_worker()
        try:
            while not self._stop_tail.is_set() and not worker.is_cancelled:
                events = tail.read()
                if events:
                    done = threading.Event()
                    self.post_message(JournalEvents(events, done))
                    while not done.wait(0.5):
                        if self._stop_tail.is_set() or worker.is_cancelled:
                            return
                else:
                    self._stop_tail.wait(LIVE_TAIL_INTERVAL if self.timeline.calls_in_flight else TAIL_INTERVAL)
        finally:
            tail.close()

    def on_journal_events(self, event: JournalEvents) -> None:
        try:
            changed = self.timeline.apply(event.events)
            if not self.main.query(PaneDeck):  # the screen is being taken down (exit): the timeline is enough
                return
            deck = self.main.deck
            for name, view in self.timeline.mads.items():
                if name not in deck.panes and name != "kernel":
                    deck.add_mad(view)
                    changed.add(name)
            names = deck.panes if "*" in changed else [n for n in changed if n in deck.panes]
            for name in names:
                pane = deck.panes[name]
                if pane.is_mounted:
                    pane.update_view()
            self.refresh_status()
            if isinstance(self.screen, ResourcesScreen):
                self.screen.refresh_rows()
            self._show_notices()
        finally:
            event.done.set()

    def _show_notices(self) -> None:
        """Say what reloads did; a kernel change restarts the child on the same journal."""
        for severity, text in self.timeline.notices:
            self.notify(text, severity=severity, markup=False)  # type: ignore[arg-type]
        self.timeline.notices.clear()
        if self.timeline.restart_needed and self.start_host:
            self.timeline.restart_needed = False
            self.action_restart_ecosystem()

    def refresh_status(self) -> None:
        bars = self.main.query("#status").results(StatusBar) if self.main.is_mounted else []
        for bar in bars:  # (none while the screen is being taken down at exit)
            host_state = self.host.state if self.start_host else "recorded"
            bar.show(self.timeline, host_state, self.host.last_error, self.host.restarts)

    # the composer ----------------------------------------------------------------
    def on_composer_sent(self, event: Composer.Sent) -> None:
        self.send_message(event.text)

    @work(group="send")
    async def send_message(self, text: str) -> None:
        deck = self.main.deck
        addressed = [name for name in parse(text).mentions if name in deck.panes]
        if addressed:  # its pane in sight while it works (a reply streaming in), not only once it answered
            deck.show_pane(addressed[0])
        try:
            result = await self.call("mad_send", {"content": text})
        except (ToolCallError, HostUnavailable) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        for reply in result.get("replies", []):
            target = reply.get("sender")
            if target in self.main.deck.panes:
                self.main.deck.show_pane(target)

    # actions ---------------------------------------------------------------------
    def action_tool_palette(self) -> None:
        from .screens.tool_palette import ToolPalette

        def chosen(name: str | None) -> None:
            if name:
                self.open_tool(name)

        self.push_screen(ToolPalette(self.tools), chosen)

    def on_tool_form_screen_called(self, event: Any) -> None:
        """Keep every call made through a form, newest last, to repeat from."""
        self.call_history.append((event.tool, event.arguments))
        del self.call_history[:-100]

    def open_tool(self, name: str, initial: dict[str, Any] | None = None) -> None:
        from .screens.tool_form import ToolFormScreen

        tool = next((t for t in self.tools if t["name"] == name), None)
        if tool is None:
            self.notify(f"no tool named {name}", severity="error")
            return
        self.push_screen(ToolFormScreen(tool, self.call, initial))

    def action_resources(self) -> None:
        from .screens.resources import ResourcesScreen

        self.push_screen(ResourcesScreen(self.timeline))

    def action_sessions(self) -> None:
        from .screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.host_options.sessions, live=self.journal))

    def action_regen(self) -> None:
        from .screens.regen import RegenScreen

        if not isinstance(self.screen, RegenScreen):
            options = self.host_options
            self.push_screen(RegenScreen(options.home, sessions=options.sessions, mad_path=list(options.mad_path),
                                         provider=options.provider, environ=options.environ,
                                         mad=self.main.focused_mad()))

    def open_at(self, seq: int) -> None:
        """The replay of this session, at one of its events (a message found from a CPU spike)."""
        self.open_replay(self.journal, at=seq)

    def open_replay(self, path: Path, at: int | None = None) -> None:
        """Hand the terminal to `mad replay` over this recording; the workbench comes back when it quits."""
        command = [sys.executable, "-m", "madtui", "replay", str(path), *(["--at", str(at)] if at else [])]
        try:
            with self.suspend():
                subprocess.run(command, check=False)
        except SuspendNotSupported:
            self.notify(f"this terminal cannot be handed over; run: mad replay {path.stem}", severity="warning")

    @work(group="control")
    async def action_pause(self) -> None:
        tool = "mad_resume" if self.paused else "mad_pause"
        try:
            await self.call(tool)
        except (ToolCallError, HostUnavailable) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.paused = not self.paused
        self.notify("ecosystem paused (F5 resumes)" if self.paused else "ecosystem resumed")

    @work(group="control")
    async def reload_mad(self, name: str) -> None:
        try:
            result = await self.call("mad_reload", {"mad": name})
        except (ToolCallError, HostUnavailable) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"{name} reloaded ({result.get('hash', '')[:8]})")

    @work(group="control")
    async def restart_mad(self, name: str) -> None:
        try:
            await self.call("mad_restart_mad", {"mad": name})
        except (ToolCallError, HostUnavailable) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"{name} restarted")

    @work(group="control")
    async def action_restart_ecosystem(self) -> None:
        await self.host.restart()
        self.notify("restarting the ecosystem (same session)")

    async def action_quit(self) -> None:
        self._stop_tail.set()
        if self._tail is not None:  # its connection closed before the child finishes the journal as one file
            with contextlib.suppress(Exception):
                await self._tail.wait()
        await self.host.stop()
        self.exit(0)

    def action_keys(self) -> None:
        """F1 and ?: the workbench's keys, grouped, then those of the focused widget."""
        from .screens.keys import KeysScreen

        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.focused))
