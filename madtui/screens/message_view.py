"""A message or result read whole: Enter (or a click) on a pane's line opens it, JSON pretty-printed and scrollable."""
from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static


def readable(text: str) -> tuple[str, str | None]:
    """The text with the JSON in it (whole, or after a head such as `@human #success `) pretty-printed; and the
    JSON part alone, for highlighting (None when there is none)."""
    stripped = text.strip()
    for start, char in enumerate(stripped):
        if char in "{[":
            try:
                value = json.loads(stripped[start:])
            except ValueError:
                return text, None
            pretty = json.dumps(value, indent=2, ensure_ascii=False)
            head = stripped[:start].rstrip()
            return (f"{head}\n{pretty}" if head else pretty), pretty
    return text, None


class MessageScreen(Screen[None]):
    """One line's full text; `y` copies it."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("y", "copy", "Copy"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text, self.json = readable(text)

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text, style="bold"), id="message-title")
        with VerticalScroll(id="message-body"):
            head = self.text[: len(self.text) - len(self.json)].rstrip() if self.json else ""
            if head:
                yield Static(Text(head), id="message-head")
            body: Any = Syntax(self.json, "json", theme="ansi_dark", word_wrap=True) if self.json else Text(self.text)
            yield Static(body, id="message-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#message-body").focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"copied {len(self.text):,} characters", timeout=2)

    def action_back(self) -> None:
        self.app.pop_screen()
