"""Go to: a time, a time after the start or an event number, typed in a small dialog."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from mads.kernel.errors import UsageError

from ..replay import ReplayCursor, parse_position

HINT = "12:03:45 (UTC) · +90 or +5m after the start · #1234 an event · start · end"


class GoToScreen(ModalScreen[int | None]):
    """Asks where to go; dismisses with the seq to go to, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    GoToScreen { align: center middle; }
    GoToScreen > Vertical { width: 72; max-width: 100%; height: auto; }
    GoToScreen #goto-hint, GoToScreen #goto-error { height: auto; }
    """

    def __init__(self, cursor: ReplayCursor) -> None:
        super().__init__()
        self.cursor = cursor

    def compose(self) -> ComposeResult:
        with Vertical(id="goto"):
            yield Input(placeholder="go to…", id="goto-input")
            yield Static(HINT, id="goto-hint")
            yield Static(id="goto-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#goto", Vertical).border_title = "go to"
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            seq = parse_position(event.value, self.cursor)
        except UsageError as exc:
            self.query_one("#goto-error", Static).update(str(exc))
            return
        self.dismiss(seq)

    def action_cancel(self) -> None:
        self.dismiss(None)
