"""A MAD pane updates its header and traffic, and skips an update that arrives while its parts are gone."""
from __future__ import annotations

from pathlib import Path

from madtui.widgets.mad_pane import MadPane
from madtui.widgets.sparkline_header import PaneHeader
from tests.helpers import until
from tests.tui.test_resources_screen import synthetic_app, write_journal


async def test_an_update_while_the_pane_is_being_taken_down_is_skipped(tmp_path: Path) -> None:
    """At exit the panes' parts go first; a journal batch handled then must not raise (it did, under load)."""
    app = synthetic_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        last = write_journal(tmp_path / "s.db")
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        pane = app.main.deck.panes["dewey"]
        assert isinstance(pane, MadPane)
        await until(pilot, lambda: pane.is_mounted and bool(pane.query_children(PaneHeader)), "dewey's pane mounted")
        await pane.query_children(PaneHeader).first().remove()
        pane.update_view()  # no PaneHeader: nothing to show, no NoMatches
        assert pane.border_subtitle is not None
