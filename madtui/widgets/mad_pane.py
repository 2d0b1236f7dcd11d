"""One MAD's pane: its header figures over its traffic."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive

from ..timeline import MadView
from .sparkline_header import PaneHeader
from .traffic_view import TrafficView


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
        count = len(self.view.lines)
        self.border_subtitle = f"{count} line" if count == 1 else f"{count} lines"
