"""A long reply read whole: Enter on a pane's line opens it, JSON pretty-printed and scrollable; y copies it."""
from __future__ import annotations

import json
from typing import Any

from textual.app import App, ComposeResult

from madtui.screens.message_view import MessageScreen, readable
from madtui.timeline import Line
from madtui.widgets.traffic_view import TrafficView

RESULT = {"path": "notes/long.txt", "versions": [{"version": n, "sha256": f"{n:064x}", "size": 1000 + n}
                                                 for n in range(1, 41)]}
REPLY = "@human #success " + json.dumps(RESULT)


def test_the_json_in_a_reply_is_pretty_printed_below_its_head() -> None:
    text, pretty = readable(REPLY)
    assert text.splitlines()[0] == "@human #success" and pretty is not None
    assert json.loads(pretty) == RESULT and pretty.count("\n") > 100
    assert readable("plain words") == ("plain words", None)
    assert readable("broken { json")[1] is None


class Panes(App[None]):
    """One traffic view, as a MAD's pane has it, opening lines in the message screen."""

    def compose(self) -> ComposeResult:
        yield TrafficView([Line(1, 0.0, "in", "← human: @Horace get_file_info path=notes/long.txt"),
                           Line(2, 0.0, "out", "→ " + REPLY[:60], detail=REPLY)])

    def on_traffic_view_details(self, event: TrafficView.Details) -> None:
        self.push_screen(MessageScreen(f"horace · #{event.line.seq} {event.line.kind}", event.line.detail or ""))


async def test_enter_opens_the_last_line_whole_and_y_copies_it() -> None:
    app = Panes()
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(TrafficView).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, MessageScreen)
        screen = app.screen
        assert screen.json is not None and '"sha256": "0000' in screen.json and screen.json.count("\n") > 100
        assert screen.query_one("#message-body").max_scroll_y > 50  # longer than the screen: it scrolls
        await pilot.press("end")
        await pilot.press("y")
        assert copied == [readable(REPLY)[0]]
        await pilot.press("escape")
        assert not isinstance(app.screen, MessageScreen)


def test_a_long_reply_opened_whole_at_80x24(snap_compare: Any) -> None:
    """The reply's head `@human #success`, then its JSON pretty-printed and highlighted from the top:
    `"path": "notes/long.txt"`, `"versions": [` and the first versions; a scrollbar on the right; the footer's
    esc Back and y Copy."""
    async def run_before(pilot: Any) -> None:
        pilot.app.query_one(TrafficView).focus()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(Panes(), terminal_size=(80, 24), run_before=run_before)
