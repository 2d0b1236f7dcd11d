"""The MAD panes side by side: as many columns as fit, a pager beyond, and zoom on one pane."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.await_remove import AwaitRemove
from textual.containers import Grid, Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Static

from ..timeline import MadView
from .mad_pane import MadPane

MIN_PANE_WIDTH = 34


class PaneDeck(Vertical):
    """Lays out one MadPane per MAD; narrow terminals page through them instead of clipping."""

    DEFAULT_CSS = """
    PaneDeck { height: 1fr; }
    PaneDeck > #tabs { height: 1; }
    PaneDeck > Grid { height: 1fr; grid-gutter: 0 1; }
    """

    zoomed: reactive[str | None] = reactive(None)
    """The MAD shown alone, if any."""
    page: reactive[int] = reactive(0)
    """The first pane shown when not all fit."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.panes: dict[str, MadPane] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="tabs")
        yield Grid(id="grid")

    def add_mad(self, view: MadView) -> MadPane:
        pane = MadPane(view)
        pane.number = len(self.panes) + 1
        self.panes[view.name] = pane
        self.query_one("#grid", Grid).mount(pane)
        self.call_after_refresh(self.relayout)
        return pane

    def remove_mad(self, name: str) -> AwaitRemove | None:
        """Take a MAD's pane away (replay: the MAD does not exist yet at the cursor); the others are renumbered.

        Await the result before adding a pane for the same MAD again (its id is taken until then).
        """
        pane = self.panes.pop(name, None)
        if pane is None:
            return None
        removed = pane.remove()
        for number, other in enumerate(self.panes.values(), 1):
            other.number = number
        if self.zoomed == name:
            self.zoomed = None
        self.call_after_refresh(self.relayout)
        return removed

    def columns(self) -> int:
        return max(1, min(len(self.panes) or 1, self.size.width // MIN_PANE_WIDTH))

    def on_resize(self, event: Resize) -> None:
        self.relayout()

    def watch_zoomed(self) -> None:
        self.relayout()

    def watch_page(self) -> None:
        self.relayout()

    def visible_names(self) -> list[str]:
        names = list(self.panes)
        if self.zoomed in self.panes:
            return [self.zoomed]  # type: ignore[list-item]
        cols = self.columns()
        if cols >= len(names):
            return names
        start = min(self.page, max(0, len(names) - cols))
        return names[start:start + cols]

    def relayout(self) -> None:
        if not self.is_mounted:
            return
        visible = self.visible_names()
        grid = self.query_one("#grid", Grid)
        grid.styles.grid_size_columns = max(1, len(visible))
        for name, pane in self.panes.items():
            pane.display = name in visible
        tabs = []
        for number, name in enumerate(self.panes, 1):
            label = f"{number} {name}"
            tabs.append(f"[reverse] {label} [/reverse]" if name in visible else f" {label} ")
        hidden = len(visible) < len(self.panes)
        self.query_one("#tabs", Static).update(" ".join(tabs) + ("   [dim]← → · alt+N zoom[/dim]" if hidden else ""))

    def zoom(self, number: int) -> str | None:
        """Zoom the pane with this number; the same number again shows all."""
        names = list(self.panes)
        if not 1 <= number <= len(names):
            return None
        name = names[number - 1]
        if self.zoomed == name:
            self.zoomed = None
            self.show_pane(name)  # back on the page that holds it, so it keeps the focus
        else:
            self.zoomed = name
        return name

    def turn_page(self, step: int) -> None:
        cols = self.columns()
        last = max(0, len(self.panes) - cols)
        self.page = max(0, min(last, self.page + step * cols))

    def show_pane(self, name: str) -> None:
        """Make sure this MAD's pane is on screen (turn the page to it)."""
        names = list(self.panes)
        if name not in names or name in self.visible_names():
            return
        cols = self.columns()
        self.page = (names.index(name) // cols) * cols
