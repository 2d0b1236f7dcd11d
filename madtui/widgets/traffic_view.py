"""A MAD's traffic as a virtual list: only the visible lines are rendered, so 100k lines scroll smoothly."""
from __future__ import annotations

import textwrap
from bisect import bisect_left, bisect_right

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..timeline import Line

STYLES = {
    "in": Style(color="cyan"),
    "out": Style(color="green"),
    "tool_call": Style(color="yellow"),
    "tool_result": Style(color="bright_black"),
    "llm": Style(color="magenta"),
    "error": Style(color="red", bold=True),
    "log": Style(color="bright_black", italic=True),
    "state": Style(color="blue"),
    "held": Style(color="black", bgcolor="yellow", bold=True),
}
LIVE = Style(color="magenta", bold=True)
"""An LLM call in flight: its model, elapsed time and tokens."""
STREAMING = Style(color="green", italic=True)
"""The text of a reply streaming in."""
LIVE_ROWS = 8
"""The most rows of a streaming reply shown under way (its end: the part that grows)."""
CURSOR = Style(reverse=True)


def _seq(line: Line) -> int:
    return line.seq


class TrafficView(ScrollView, can_focus=True):
    """Lines of one MAD's traffic; follows the end unless the user scrolled away."""

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-20)", "Page up", show=False),
        Binding("pagedown", "move(20)", "Page down", show=False),
        Binding("home", "jump(0)", "Top", show=False),
        Binding("end", "jump(-1)", "End", show=False),
        Binding("enter", "details", "Details"),
    ]

    show_logs: reactive[bool] = reactive(False)
    """Whether log lines are shown."""
    cursor: reactive[int] = reactive(-1)
    """The selected line (-1: follow the end)."""

    class Details(Message):
        """The user asked for the full text of a line (traceback, result)."""

        def __init__(self, line: Line) -> None:
            super().__init__()
            self.line = line

    def __init__(self, lines: list[Line], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.source = lines
        self._visible: list[Line] = []
        self._taken_upto = -1
        """The seq of the last source line taken in; lines are found by seq, so the source may be cut."""
        self._live: list[tuple[str, Style]] = []
        """Rows under the lines for what is under way (LLM calls in flight and the text they streamed)."""

    def show_live(self, calls: list[tuple[str, str]]) -> None:
        """Show what is under way under the lines: per call a head row and its streamed text, wrapped to the
        width (its last LIVE_ROWS rows); none: nothing under way. Only a change repaints."""
        width = max(self.scrollable_content_region.width, 20)
        rows: list[tuple[str, Style]] = []
        for head, text in calls:
            rows.append((head, LIVE))
            if text:  # only its end is shown: wrap no more than that (the text grows with every chunk)
                tail = text[-(LIVE_ROWS + 1) * width:]
                wrapped = [row for part in tail.splitlines() or [""]
                           for row in (textwrap.wrap(part, width - 2) or [""])]
                rows += [("  " + row, STREAMING) for row in wrapped[-LIVE_ROWS:]]
        if rows == self._live:
            return
        grew = len(rows) != len(self._live)
        self._live = rows
        if grew:
            following = self.cursor < 0 and self.scroll_y >= self.max_scroll_y - 1
            self.virtual_size = Size(0, len(self._visible) + len(rows))
            if following or self.scroll_y > self.max_scroll_y:  # (fewer rows: never left past the end)
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        self.refresh()

    def take_in_lines(self) -> None:
        """Take in lines added to the source since the last call, and let go of lines it no longer holds.

        The source is trimmed at its start past MAX_LINES, and cut back at its end when replay steps back.
        """
        source = self.source
        visible = self._visible
        if not source:
            visible.clear()
            self._taken_upto = -1
        else:
            if source[-1].seq < self._taken_upto:
                self._taken_upto = source[-1].seq
                del visible[bisect_right(visible, self._taken_upto, key=_seq):]
            if visible and visible[0].seq < source[0].seq:
                del visible[:bisect_left(visible, source[0].seq, key=_seq)]
        new = source[bisect_right(source, self._taken_upto, key=_seq):]
        if new:
            self._taken_upto = new[-1].seq
        visible.extend(line for line in new if self.show_logs or line.kind != "log")
        if self.cursor >= len(visible):
            self.cursor = len(visible) - 1
        following = self.cursor < 0 and self.scroll_y >= self.max_scroll_y - 1
        self.virtual_size = Size(0, len(self._visible) + len(self._live))  # cropped to the width: no sideways scroll
        if following:
            # forced: the first burst that overflows comes before the layout that shows the scrollbar
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        self.refresh()

    def watch_show_logs(self) -> None:
        self._visible = []
        self._taken_upto = -1
        self.take_in_lines()

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if index >= len(self._visible):
            live = index - len(self._visible)
            if live < len(self._live):
                text, live_style = self._live[live]
                return Strip([Segment(text[: max(width, 0)], live_style)]).adjust_cell_length(width)
            return Strip.blank(width)
        line = self._visible[index]
        style = STYLES.get(line.kind, Style())
        if index == self.cursor:
            style = style + CURSOR
        text = line.text.replace("\n", " ")
        segments = [Segment(text[: max(width, 0)], style)]
        return Strip(segments).adjust_cell_length(width)

    def action_move(self, step: int) -> None:
        if not self._visible:
            return
        start = self.cursor if self.cursor >= 0 else len(self._visible) - 1
        self.cursor = max(0, min(len(self._visible) - 1, start + step))
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= self.scroll_y + self.size.height:
            self.scroll_to(y=self.cursor - self.size.height + 1, animate=False)
        self.refresh()

    def action_jump(self, where: int) -> None:
        if where < 0:
            self.cursor = -1
            self.scroll_end(animate=False)
        else:
            self.cursor = 0
            self.scroll_home(animate=False)
        self.refresh()

    def action_details(self) -> None:
        """The selected line whole (the last one when none is selected)."""
        index = self.cursor if self.cursor >= 0 else len(self._visible) - 1
        if 0 <= index < len(self._visible):
            self.post_message(self.Details(self._visible[index]))

    def on_click(self, event: events.Click) -> None:
        """A click selects the line under it and opens it whole."""
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < len(self._visible):
            self.cursor = index
            self.refresh()
            self.post_message(self.Details(self._visible[index]))
