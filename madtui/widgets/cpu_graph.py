"""A MAD's CPU over the last minute: a wide sparkline between its max and min labels."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from ..timeline import HISTORY_SECONDS, MadView


class CpuGraph(Vertical):
    """The selected MAD's CPU history (one bar per sample); its border title carries the current figure.

    The sparkline scales between the smallest and largest sample, so the labels say what those are.
    """

    DEFAULT_CSS = """
    CpuGraph { height: 1fr; }
    CpuGraph > #graph-row { height: 1fr; }
    CpuGraph #graph-labels { width: 12; height: 1fr; }
    CpuGraph #graph-labels > Static { height: 1; }
    CpuGraph #graph-labels > #graph-gap { height: 1fr; }
    CpuGraph #graph-history { height: 1fr; width: 1fr; }
    CpuGraph > #graph-caption { height: 1; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="graph-row"):
            with Vertical(id="graph-labels"):
                yield Static(id="graph-max")
                yield Static(id="graph-gap")
                yield Static(id="graph-min")
            yield Sparkline([], id="graph-history")
        yield Static(id="graph-caption")

    def on_mount(self) -> None:
        self.show(None)

    def show(self, view: MadView | None) -> None:
        """Draw this MAD's history, or a hint when none is selected."""
        history = list(view.cpu_history) if view is not None else []
        self.query_one("#graph-history", Sparkline).data = history
        if view is None:
            self.border_title = "CPU"
            self.query_one("#graph-max", Static).update("")
            self.query_one("#graph-min", Static).update("")
            self.query_one("#graph-caption", Static).update("select a MAD to see its CPU over time")
            return
        self.border_title = f"{view.name} · CPU {view.cpu_percent:.1f}%"
        top, bottom = (max(history), min(history)) if history else (0.0, 0.0)
        self.query_one("#graph-max", Static).update(f"max {top:5.1f}%")
        self.query_one("#graph-min", Static).update(f"min {bottom:5.1f}%")
        self.query_one("#graph-caption", Static).update(
            f"last {len(history)} of {HISTORY_SECONDS} s · {view.cpu_seconds:.2f} CPU s in all")

    @property
    def history(self) -> list[float]:
        """The samples drawn now."""
        return list(self.query_one("#graph-history", Sparkline).data or [])
