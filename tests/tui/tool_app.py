"""A tiny app for the tool form and palette tests: it has `tools`, `open_tool` and a recording fake call."""
from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from madtui.commands import ToolCommands
from madtui.screens.tool_form import ProgressCallback, ToolFormScreen
from madtui.screens.tool_palette import ToolPalette

from .schemas import TOOLS


class FakeCall:
    """Records every call and answers from `results` (a value, or an exception to raise)."""

    def __init__(self, result: Any = None, *, block: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.result = {"ok": True} if result is None else result
        self.block = block
        self.started = asyncio.Event()

    async def __call__(self, name: str, arguments: dict[str, Any], progress: ProgressCallback) -> Any:
        self.calls.append((name, arguments))
        if self.block:
            await progress(1, 4, "copying")
            self.started.set()
            await asyncio.Event().wait()
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


class ToolApp(App[None]):
    """Provides what the real app will: `tools`, `open_tool(name)`, a palette key and ctrl+p commands."""

    COMMANDS = App.COMMANDS | {ToolCommands}
    BINDINGS = [Binding("ctrl+t", "tool_palette", "Tools")]

    def __init__(self, call: FakeCall | None = None, *, open_first: str | None = None,
                 initial: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.tools: list[dict[str, Any]] = TOOLS
        self.call = call or FakeCall()
        self.opened: list[str] = []
        self.open_first = open_first
        self.initial = initial

    def compose(self) -> ComposeResult:
        yield Static("home")

    def on_mount(self) -> None:
        if self.open_first:
            self.open_tool(self.open_first, self.initial)

    def open_tool(self, name: str, initial: dict[str, Any] | None = None) -> None:
        self.opened.append(name)
        tool = next(t for t in self.tools if t["name"] == name)
        self.push_screen(ToolFormScreen(tool, self.call, initial))

    def action_tool_palette(self) -> None:
        self.push_screen(ToolPalette(self.tools), lambda name: name and self.open_tool(name))
