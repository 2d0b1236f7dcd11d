"""The pane header's CPU trace: noise stays flat, real work draws tall bars, newest on the right."""
from __future__ import annotations

from textual.app import App, ComposeResult

from madtui.widgets.cpu_trace import BARS, CpuTrace, levels


def test_a_tenth_of_a_percent_is_a_flat_line_not_a_full_bar() -> None:
    assert levels([0.0, 0.1, 0.3, 0.0], 6) == [0, 0, 0, 0, 0, 0]


def test_below_the_floor_bars_are_drawn_against_ten_percent_and_above_it_against_the_peak() -> None:
    assert levels([5.0, 10.0], 2) == [4, 7]
    assert levels([50.0, 100.0, 0.0], 3) == [4, 7, 0]


def test_only_the_newest_samples_that_fit_are_drawn_and_a_short_history_is_padded_on_the_left() -> None:
    assert levels([100.0] * 5 + [0.0, 0.0], 3) == [7, 0, 0]
    assert levels([10.0], 4) == [0, 0, 0, 7]
    assert levels([], 3) == [0, 0, 0] and levels([1.0], 0) == []


async def test_the_widget_draws_one_bar_per_sample_across_its_width() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield CpuTrace()

    async with Host().run_test(size=(12, 3)) as pilot:
        trace = pilot.app.query_one(CpuTrace)
        trace.samples = (0.2, 40.0, 80.0)
        await pilot.pause()
        line = trace.render().plain
        assert line == BARS[0] * 9 + BARS[0] + BARS[4] + BARS[7]
