"""The header of a MAD pane: name, state, version and figures, with a sparkline of the last 60 s of CPU."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ..timeline import MadView

STATE_MARK = {"running": "●", "paused": "‖", "restarting": "↻", "failed": "✗", "starting": "…",
              "stopped": "■", "retired": "–"}


class PaneHeader(Vertical):
    """Two lines of figures and a CPU sparkline; `show(view)` updates them."""

    DEFAULT_CSS = """
    PaneHeader { height: auto; }
    PaneHeader > Static { height: 1; }
    PaneHeader > Sparkline { height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="figures")
        yield Sparkline([0.0], id="cpu")

    def show(self, view: MadView, number: int | None = None) -> None:
        mark = STATE_MARK.get(view.state, "?")
        key = f"{number} " if number is not None else ""
        version = f" {view.version}" if view.version else ""
        errors = f" [red]✗{view.errors}[/red]" if view.errors else ""  # on the short line, so a narrow pane keeps it
        self.query_one("#title", Static).update(f"[b]{key}{view.name}[/b] {mark} {view.state}{version}{errors}")
        cost = f" ${view.cost:.4f}" if view.cost else ""
        self.query_one("#figures", Static).update(
            f"cpu {view.cpu_percent:4.1f}% · {view.messages_per_s:.1f} msg/s · box {view.mailbox_depth}"
            f" · {view.tokens} tok{cost}")
        # A leading zero keeps the scale from 0 up: alone, one sample (or a flat line) is drawn as a full bar.
        self.query_one("#cpu", Sparkline).data = [0.0, *view.cpu_history]
        self.set_class(view.state == "failed", "-failed")
