"""From a CPU spike to the message that caused it: F2, Enter on the MAD, its costliest second, Enter opens it."""
from __future__ import annotations

from pathlib import Path

import pytest

from madtui.replay_app import ReplayApp
from madtui.screens.handled import HandledScreen
from madtui.screens.resources import ResourcesScreen
from mads.kernel.journal import reader
from tests.helpers import record_burner, wait_for


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return record_burner(tmp_path, sample_interval=0.05)


async def test_the_resources_screen_leads_from_the_spike_to_the_message_and_opens_the_replay_there(
        journal: Path) -> None:
    (heavy,) = [e["seq"] for e in reader.read_events(journal, kind=["handled"])
                if e["payload"].get("head") == "@Burner heavy lifting, please"]
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.cursor is not None and app.main.is_mounted, what="the replay open")
        assert app.cursor is not None
        await app.move(app.cursor.last_seq)
        await wait_for(lambda: app.cursor.position == app.cursor.last_seq, what="the cursor at the end")
        await pilot.press("f2")
        assert isinstance(app.screen, ResourcesScreen)
        screen = app.screen
        await wait_for(lambda: screen.table.selected_name == "burner", what="burner selected")
        await pilot.press("enter")  # the MAD's costliest second
        assert isinstance(app.screen, HandledScreen)
        listed = app.screen.rows
        assert listed[0][3] == "@Burner heavy lifting, please" and listed[0][2] >= 150
        assert app.screen.selected_seq == heavy
        await pilot.press("enter")
        await wait_for(lambda: app.cursor.position == heavy and not isinstance(app.screen, HandledScreen),
                       what="the replay at the heavy message")
