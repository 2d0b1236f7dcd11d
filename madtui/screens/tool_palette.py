"""ToolPalette: fuzzy search over every tool by name and description; Enter picks, Escape cancels."""
from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

DESCRIPTION_WEIGHT = 0.5


def rank_tools(query: str, tools: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any], tuple[int, ...]]]:
    """Tools matching `query`, best first, with the name offsets that matched (for highlighting).

    Underscores count as spaces, in the names and in the query, so `write file`, `write_file` and
    `hwf` all find `horace_write_file`.
    """
    words = query.replace("_", " ").strip()
    if not words:
        return [(0.0, tool, ()) for tool in sorted(tools, key=lambda t: t["name"])]
    matcher = Matcher(words)
    ranked = []
    for tool in tools:
        score, offsets = matcher.fuzzy_search.match(matcher.query, tool["name"].replace("_", " "))
        description_score = matcher.match(tool.get("description") or "") * DESCRIPTION_WEIGHT
        if description_score > score:
            score, offsets = description_score, ()
        if score > 0:
            ranked.append((score, tool, tuple(offsets)))
    ranked.sort(key=lambda hit: (-hit[0], hit[1]["name"]))
    return ranked


def tool_prompt(tool: dict[str, Any], offsets: tuple[int, ...]) -> Content:
    """The tool's name (matched letters highlighted) and the first line of its description."""
    name = Content(tool["name"]).stylize("bold")
    for offset in offsets:
        name = name.stylize("reverse", offset, offset + 1)
    description = (tool.get("description") or "").strip().splitlines()
    if not description:
        return name
    return Content.assemble(name, "  ", Content(description[0]).stylize("dim"))


class ToolPalette(ModalScreen[str | None]):
    """Type to narrow the tools, ↑/↓ to move, Enter to open the form of the highlighted tool."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    DEFAULT_CSS = """
    ToolPalette { align: center top; }
    ToolPalette > #palette { width: 90%; max-width: 120; height: auto; max-height: 80%; margin-top: 2; }
    ToolPalette OptionList { height: auto; max-height: 20; }
    """

    def __init__(self, tools: list[dict[str, Any]]) -> None:
        super().__init__()
        self.tools = tools

    def compose(self) -> ComposeResult:
        with Vertical(id="palette"):
            yield Input(placeholder="Search tools…", id="tool-search")
            yield OptionList(id="tool-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#tool-search", Input).focus()

    def _fill(self, query: str) -> None:
        """Show the tools that match `query`, best first, the first one highlighted."""
        options = self.query_one("#tool-list", OptionList)
        options.clear_options()
        options.add_options(Option(tool_prompt(tool, offsets), id=tool["name"])
                            for _, tool, offsets in rank_tools(query, self.tools))
        options.highlighted = 0 if options.option_count else None

    @on(Input.Changed, "#tool-search")
    def _search(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#tool-search")
    def _pick_highlighted(self) -> None:
        options = self.query_one("#tool-list", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#tool-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        """Move the highlight while typing."""
        options = self.query_one("#tool-list", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    def action_cancel(self) -> None:
        """Close without picking."""
        self.dismiss(None)
