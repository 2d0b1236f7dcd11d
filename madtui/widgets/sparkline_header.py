"""The header of a MAD pane: name, state, version and figures, with a trace of the last minute of CPU."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..timeline import MadView
from .cpu_trace import CpuTrace

def short_node(node: str) -> str:
    """A process of a distributed ecosystem as people name it: host:pid (without its tag)."""
    return node.rsplit(":", 1)[0] if node.count(":") >= 2 else node


STATE_MARK = {"running": "●", "paused": "‖", "restarting": "↻", "failed": "✗", "starting": "…",
              "stopped": "■", "retired": "–"}


class PaneHeader(Vertical):
    """Two lines of figures and a CPU trace; `show(view)` updates them."""

    DEFAULT_CSS = """
    PaneHeader { height: auto; }
    PaneHeader > Static { height: 1; width: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, str] = {}
        """What each line shows now."""

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="figures")
        yield CpuTrace(id="cpu")

    def _line(self, selector: str, text: str) -> None:
        """Show a new text on one of the fixed one-line Statics: a repaint, never a layout."""
        line = self.query_one(selector, Static)
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            line.update(text, layout=False)

    def show(self, view: MadView, number: int | None = None) -> None:
        mark = STATE_MARK.get(view.state, "?")
        key = f"{number} " if number is not None else ""
        version = f" {view.version}" if view.version else ""
        errors = f" [red]✗{view.errors}[/red]" if view.errors else ""  # on the short line, so a narrow pane keeps it
        cost = f" ${view.cost:.4f}" if view.cost else ""
        saved = f" · {view.tokens_avoided} saved" if view.tokens_avoided else ""  # by DTR and LPPM
        where = f" · {short_node(view.node)}" if view.node else ""  # distributed: the process hosting it
        if view.placement == "isolated":  # its own process: the figures are that process's
            self._line("#title", f"[b]{key}{view.name}[/b] {mark} {view.state}{version}{errors}{where}"
                                 f" · pid {view.pid or '–'}")
            rss = f"{view.memory_bytes / 2 ** 20:.0f} MB" if view.memory_bytes is not None else "–"
            self._line("#figures", f"own cpu {view.cpu_percent:4.1f}% · rss {rss} · box {view.mailbox_depth}{cost}")
        else:
            self._line("#title", f"[b]{key}{view.name}[/b] {mark} {view.state}{version}{errors}{where}")
            self._line("#figures", f"cpu {view.cpu_percent:4.1f}% · {view.messages_per_s:.1f} msg/s"
                                   f" · box {view.mailbox_depth} · {view.tokens} tok{cost}{saved}")
        self.query_one("#cpu", CpuTrace).samples = tuple(view.cpu_history)
        self.set_class(view.state == "failed", "-failed")
