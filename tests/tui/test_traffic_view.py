"""The traffic view: follows the end when lines arrive in bursts, and never scrolls sideways."""
from __future__ import annotations

from textual.app import App, ComposeResult

from madtui.timeline import Line
from madtui.widgets.traffic_view import TrafficView


class OneView(App[None]):
    """A TrafficView alone over a list of lines the test fills."""

    def __init__(self, lines: list[Line]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        yield TrafficView(self.lines)


def _lines(start: int, count: int) -> list[Line]:
    return [Line(i, 0.0, "out", f"→ line {i} " + "long words " * 10) for i in range(start, start + count)]


async def test_a_burst_of_more_lines_than_fit_shows_the_last_one() -> None:
    lines: list[Line] = []
    app = OneView(lines)
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(TrafficView)
        lines.extend(_lines(0, 100))
        view.take_in_lines()
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0
        assert view.render_line(view.scrollable_content_region.height - 1).text.startswith("→ line 99 ")
        lines.extend(_lines(100, 50))
        view.take_in_lines()
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0
        assert view.render_line(view.scrollable_content_region.height - 1).text.startswith("→ line 149 ")


async def test_a_pane_scrolled_away_from_the_end_stays_where_it_is() -> None:
    lines: list[Line] = _lines(0, 100)
    app = OneView(lines)
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(TrafficView)
        view.take_in_lines()
        await pilot.pause()
        view.scroll_to(y=10, animate=False, immediate=True)
        lines.extend(_lines(100, 50))
        view.take_in_lines()
        await pilot.pause()
        assert view.scroll_y == 10


async def test_long_lines_are_cropped_so_no_horizontal_scrollbar_appears() -> None:
    lines: list[Line] = []
    app = OneView(lines)
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(TrafficView)
        lines.extend(_lines(0, 100))
        view.take_in_lines()
        await pilot.pause()
        assert view.show_vertical_scrollbar and not view.show_horizontal_scrollbar
        assert view.render_line(0).cell_length == view.scrollable_content_region.width
