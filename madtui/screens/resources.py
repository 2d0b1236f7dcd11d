"""The resources screen: every MAD's figures in a sortable table, the selected MAD's CPU over time, profiles
and memory readings.

All MADs share one heap, so the once-a-second samples carry the process's memory only; a
memory reading (m, mad_memory) attributes the allocations made while it traced to the MADs
that made them and fills the table's memory column until the next reading.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from ..host import HostUnavailable, ToolCallError
from ..timeline import MadView, Timeline
from ..widgets.sparkline_header import short_node
from ..widgets.cpu_graph import CpuGraph
from ..widgets.profile_panel import ProfilePanel
from ..widgets.resource_table import ResourceTable

PROFILE_SECONDS = 3


class ProfileProgress(Message):
    """The profile worker heard from py-spy: done of total seconds."""

    def __init__(self, done: float, total: float | None, message: str | None) -> None:
        super().__init__()
        self.done = done
        self.total = total
        self.message = message


class ProfileFinished(Message):
    """The measuring worker got a result (profile) or a one-line error (error); kind: profile or memory."""

    def __init__(self, mad: str, profile: dict[str, Any] | None, error: str | None = None,
                 kind: str = "profile") -> None:
        super().__init__()
        self.mad = mad
        self.profile = profile
        self.error = error
        self.kind = kind


def process_text(timeline: Timeline) -> str:
    """The process's figures: CPU, resident memory (shared by every MAD) and threads."""
    process = timeline.process
    if not process:
        return "process · no sample yet"
    rss = process.get("rss", 0) / (1024 * 1024)
    views = [view for name, view in timeline.mads.items() if name != "kernel"]
    here = [view for view in views if view.node is None or view.node == timeline.node]
    own = sum(1 for view in here if view.placement == "isolated")
    shared = ("hosts no MAD" if not here else f"one heap for all {len(here)} MADs" if not own else
              f"one heap for {len(here) - own} MADs, {own} in their own process ⧉")
    line = (f"process · CPU {process.get('cpu_percent', 0.0):.1f}% · RSS {rss:.1f} MB, {shared}"
            f" · {process.get('threads', 0)} threads")
    others = [(node, figures) for node, figures in sorted(timeline.nodes.items()) if node != timeline.node]
    if others:  # distributed: each process hosting MADs, as it sampled itself
        line += "".join(f"\n{short_node(node)} · CPU {figures.get('cpu_percent', 0.0):.1f}% · "
                        f"RSS {figures.get('rss', 0) / 2 ** 20:.1f} MB · "
                        f"{', '.join(sorted(v.name for v in views if v.node == node)) or 'no MAD'}"
                        for node, figures in others)
    return line


def tokens_text(timeline: Timeline) -> str:
    """Tokens the model spent and those the Thought Engine saved (DTR commands, LPPM), per MAD; empty before any."""
    views = [view for name, view in timeline.mads.items() if name != "kernel"]
    saved = [view for view in views if view.tokens_avoided]
    if not saved:
        return ""
    used = sum(view.tokens for view in views)
    per_mad = " · ".join(f"{view.name} {view.tokens_avoided:,}"
                         for view in sorted(saved, key=lambda v: -v.tokens_avoided))
    return f"tokens · {used:,} used · {sum(v.tokens_avoided for v in saved):,} saved: {per_mad}"


def calls_text(timeline: Timeline, now: float) -> str:
    """The LLM calls in flight, one line each: MAD, model, seconds so far, tokens streamed; empty when none."""
    rows = [f"  {view.name:<10} {flight['model']} · {max(0.0, now - flight['wall']):.1f} s · "
            f"{flight['chunks']} tokens" + (f" · {flight['note']}" if flight.get("note") else "")
            for name, view in timeline.mads.items() if name != "kernel" for flight in view.in_flight.values()]
    if not rows:
        return ""
    return f"LLM calls in flight · {len(rows)}\n" + "\n".join(rows)


class ResourcesScreen(Screen[None]):
    """What each MAD costs: sorted rows (CPU % first), the selected MAD's CPU graph, and py-spy profiles."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f2", "back", "Back", show=False),
        Binding("p", "profile", "Profile"),
        Binding("m", "memory", "Memory"),
        Binding("left_square_bracket", "second(1)", "Earlier second", show=False),
        Binding("right_square_bracket", "second(-1)", "Later second", show=False),
    ]

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self.timeline = timeline
        self.back: int | None = None
        """The second looked at, counted back from the last sample (None: the selected MAD's peak)."""

    def compose(self) -> ComposeResult:
        yield Static(id="resources-title")
        yield ResourceTable(id="resources-table")
        yield Static(id="resources-process")
        with Horizontal(id="resources-lower"):
            yield CpuGraph(id="resources-graph")
            yield ProfilePanel(id="resources-profile")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._show_rows()

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def graph(self) -> CpuGraph:
        return self.query_one(CpuGraph)

    @property
    def profile_panel(self) -> ProfilePanel:
        return self.query_one(ProfilePanel)

    def views(self) -> list[MadView]:
        return [view for name, view in self.timeline.mads.items() if name != "kernel"]

    def refresh_rows(self) -> None:
        """Show the timeline's latest figures; the selected MAD stays selected."""
        if self.is_mounted:
            self._show_rows()

    def _show_rows(self) -> None:
        self.table.show(self.views())
        tokens = tokens_text(self.timeline)
        clock = getattr(self.app, "pane_clock", None)
        calls = calls_text(self.timeline, clock() if clock is not None else time.time())
        self.query_one("#resources-process", Static).update(process_text(self.timeline)
                                                            + (f"\n{tokens}" if tokens else "")
                                                            + (f"\n{calls}" if calls else ""))
        session = self.timeline.session_id or "no session yet"
        self.query_one("#resources-title", Static).update(
            f"[b]resources[/b] · {session} · {self.timeline.ecosystem_state} · sampled once a second")
        self.show_selected()

    def show_selected(self) -> None:
        name = self.table.selected_name
        self.graph.show(self.timeline.mads.get(name) if name else None)
        panel = self.profile_panel
        if name and not panel.running and panel.profile is not None and panel.mad != name:
            panel.finished(name, panel.profile, panel.kind)  # the last profile or reading, as this MAD saw it

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.back = None
        self.show_selected()

    # from a spike to its messages ---------------------------------------------------------
    def _second(self) -> tuple[MadView, int, float, float] | None:
        from .handled import second_of

        name = self.table.selected_name
        view = self.timeline.mads.get(name) if name else None
        found = second_of(view, self.back) if view is not None else None
        return (view, *found) if view is not None and found is not None else None

    def action_second(self, step: int) -> None:
        """[ and ]: look at an earlier or later second of the selected MAD's CPU."""
        found = self._second()
        if found is None:
            return
        view, index, _, _ = found
        last = len(view.cpu_walls) - 1
        self.back = min(last, max(0, (last - index) + step))
        view, index, wall, cpu = self._second() or found
        from .handled import handled_in

        count = len(handled_in(view, index))
        when = datetime.fromtimestamp(wall).strftime("%H:%M:%S")
        self.notify(f"{view.name} · second up to {when}: {cpu:.0f}% CPU, {count} message{'s' * (count != 1)}"
                    " · Enter lists them", timeout=3)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a MAD: the messages it handled in the chosen second (at first, its costliest second)."""
        from .handled import HandledScreen, handled_in

        found = self._second()
        if found is None:
            self.notify("no CPU sample of this MAD yet", severity="warning")
            return
        view, index, wall, cpu = found
        self.app.push_screen(HandledScreen(view.name, wall, cpu, handled_in(view, index)))

    # profiles --------------------------------------------------------------------
    def action_profile(self) -> None:
        self._measure("profile")

    def action_memory(self) -> None:
        self._measure("memory")

    def _measure(self, kind: str) -> None:
        mad = self.table.selected_name
        if mad is None:
            self.notify(f"no MAD to {'profile' if kind == 'profile' else 'read the memory of'} yet",
                        severity="warning")
            return
        if self.profile_panel.running:
            self.notify(f"a {self.profile_panel.kind} is already being taken", severity="warning")
            return
        self.profile_panel.started(mad, PROFILE_SECONDS, kind)
        self.take_measurement(mad, kind)

    @work(exclusive=True, group="profile", exit_on_error=False)
    async def take_measurement(self, mad: str, kind: str) -> None:
        """Run mad_profile or mad_memory in the ecosystem; results and progress come back as messages."""

        async def progress(done: float, total: float | None, message: str | None) -> None:
            self.post_message(ProfileProgress(done, total, message))

        try:
            result = await self.app.call(f"mad_{kind}", {"seconds": PROFILE_SECONDS}, progress)  # type: ignore[attr-defined]
        except (ToolCallError, HostUnavailable) as exc:
            self.post_message(ProfileFinished(mad, None, str(exc) or type(exc).__name__, kind))
            return
        self.post_message(ProfileFinished(mad, result, kind=kind))

    def on_profile_progress(self, event: ProfileProgress) -> None:
        self.profile_panel.advanced(event.done, event.total, event.message)

    def on_profile_finished(self, event: ProfileFinished) -> None:
        if event.error is not None or not isinstance(event.profile, dict):
            error = event.error or f"unexpected answer from mad_{event.kind}: {str(event.profile)[:80]}"
            self.profile_panel.failed(error)
            self.notify(f"{event.kind} failed: {error}", severity="error")
            return
        self.profile_panel.finished(event.mad, event.profile, event.kind)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "profile" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self.log.error("the profile worker failed", error=repr(error))
            self.post_message(ProfileFinished(self.profile_panel.mad or "?", None,
                                              f"{type(error).__name__}: {error}", self.profile_panel.kind))

    def action_back(self) -> None:
        self.app.pop_screen()
