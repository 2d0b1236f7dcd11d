"""F1 and ?: the workbench's own keys first, grouped, then the keys of the widget that has the focus."""
from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Panes", [("tab / shift+tab", "focus the next / previous pane"), ("1-9", "zoom a pane (alt+1-9 from the "
               "composer)"), ("← →", "turn the page of panes"), ("↑ ↓ pgup pgdn", "select a line"),
               ("enter / click", "open the line whole (y copies)"), ("f3", "show logs"), ("f4", "reload the MAD"),
               ("f6", "restart the MAD"), ("b", "break on messages to the MAD"),
               ("c / e / d", "continue / edit then continue / drop its held message"),
               ("esc", "cancel the MAD's LLM call in flight (none: back to the composer)")]),
    ("Composer", [("enter", "send (prose to nobody goes to the default MAD)"), ("@ / tab", "complete a MAD, "
                  "a tool, a parameter"), ("↑ ↓", "earlier messages"), ("esc", "back to the composer")]),
    ("Screens", [("f2", "resources: CPU, memory, tokens, profiles"), ("f8", "sessions: replay, search, re-run"),
                 ("f9", "regen: review candidates of mad regen"), ("ctrl+t", "call a tool with a form"),
                 ("ctrl+p", "command palette"), ("f5", "pause / resume the ecosystem"),
                 ("f7", "restart the ecosystem"), ("ctrl+q", "quit")]),
    ("Replay (mad replay)", [("space", "play / pause"), (". ,", "step one event"), ("> <", "one second"),
                             ("e / E", "next / previous error"), ("c / r", "next crash / reload"),
                             ("g", "go to a time")]),
]


def keys_table(groups: list[tuple[str, list[tuple[str, str]]]], focused: list[tuple[str, str]],
               focused_name: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, rows in groups:
        table.add_row(Text(title, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    if focused:
        table.add_row(Text(f"{focused_name} (has the focus)", style="bold underline"), "")
        for key, what in focused:
            table.add_row(key, what)
    return table


class KeysScreen(ModalScreen[None]):
    """The keys; esc, F1 or ? closes it."""

    DEFAULT_CSS = """
    KeysScreen { align: center middle; }
    KeysScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close")]

    def __init__(self, focused: Any = None) -> None:
        super().__init__()
        self.focused_widget = focused

    def focused_keys(self) -> list[tuple[str, str]]:
        widget = self.focused_widget
        if widget is None:
            return []
        found = []
        for binding in getattr(widget, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                found.append((binding.key.replace(",", " / "), binding.description))
        return found

    def compose(self) -> ComposeResult:
        name = type(self.focused_widget).__name__ if self.focused_widget is not None else ""
        with VerticalScroll():
            yield Static(keys_table(GROUPS, self.focused_keys(), name), id="keys-table")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
