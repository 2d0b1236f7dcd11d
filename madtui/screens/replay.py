"""The screens of replay: MAD panes and resources as the workbench draws them, under the replay bar."""
from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

from ..widgets.pane_deck import PaneDeck
from ..widgets.replay_bar import ReplayBar
from ..widgets.status_bar import StatusBar
from .main import MainScreen
from .resources import ResourcesScreen

LIVE_ONLY = frozenset({"focus_composer", "escape", "reload_mad", "restart_mad", "profile", "break_on", "held"})
"""Actions that need a running ecosystem; a recording hides them."""


class ReplayScreen(MainScreen):
    """Every MAD side by side at the cursor; no composer, since a recording takes no input."""

    def compose(self) -> ComposeResult:
        yield ReplayBar(id="replay-bar")
        yield StatusBar(id="status")
        yield PaneDeck(id="deck")
        yield Footer()

    def on_mount(self, event: events.Mount) -> None:  # type: ignore[override]  # (takes the event to stop it)
        event.prevent_default()  # the main screen's own handler focuses the composer, which is not here

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in LIVE_ONLY


class ReplayResourcesScreen(ResourcesScreen):
    """Every MAD's figures and CPU graph at the cursor; profiles need a running ecosystem, so none here."""

    def compose(self) -> ComposeResult:
        yield ReplayBar(id="replay-bar")
        yield from super().compose()

    def on_mount(self) -> None:
        self.app.refresh_bars()  # type: ignore[attr-defined]

    def refresh_rows(self) -> None:
        """Show the figures at the cursor; a MAD that does not exist yet there loses its row."""
        if self.is_mounted:
            names = {view.name for view in self.views()}
            for key in [key for key in self.table.rows if key.value not in names]:
                self.table.remove_row(key)
        super().refresh_rows()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in LIVE_ONLY
