"""ToolCommands: a command palette provider offering every tool ("Call tool: horace_write_file")."""
from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content

DESCRIPTION_WEIGHT = 0.5


def command_text(name: str) -> str:
    """What the palette shows for a tool."""
    return f"Call tool: {name}"


def highlighted(matcher: Matcher, text: str) -> tuple[float, Content]:
    """The score of `text` (underscores read as spaces) and the text with its matched letters styled."""
    score, offsets = matcher.fuzzy_search.match(matcher.query, text.replace("_", " "))
    content = Content(text)
    for offset in offsets:
        content = content.stylize(matcher.match_style, offset, offset + 1)
    return score, content


class ToolCommands(Provider):
    """Every tool of `app.tools` as a command that calls `app.open_tool(name)`."""

    def _tools(self) -> list[dict[str, Any]]:
        """The app's tools (a list of {name, description, input_schema})."""
        return list(getattr(self.app, "tools", None) or [])

    def _open(self, name: str) -> None:
        """Open the tool's form."""
        self.app.open_tool(name)  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for tool in sorted(self._tools(), key=lambda t: t["name"]):
            text = command_text(tool["name"])
            yield DiscoveryHit(text, partial(self._open, tool["name"]), text=text, help=tool.get("description"))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for tool in self._tools():
            text = command_text(tool["name"])
            score, display = highlighted(matcher, text)
            score = max(score, matcher.match(tool.get("description") or "") * DESCRIPTION_WEIGHT)
            if score > 0:
                yield Hit(score, display, partial(self._open, tool["name"]), text=text, help=tool.get("description"))
