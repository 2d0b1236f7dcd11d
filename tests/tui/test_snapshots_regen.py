"""Pictures of the Regen screen (F9) over gated candidates of Counter: a divergence, a rejection, progress."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.regen import RegenProgress, RegenScreen
from tests.helpers import wait_for

SESSION = re.compile(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}")


@pytest.fixture
def fixed(root: Path) -> Path:
    """The copy with its recording's id made fixed, so the pictures do not change from run to run."""
    for report in (root / "home" / "regen" / "counter").glob("*/report.json"):
        report.write_text(SESSION.sub("20261129T120000.000Z-abc123", report.read_text()))
    return root


def app_over(root: Path) -> MadApp:
    return MadApp(HostOptions(home=root / "home", sessions=root / "sessions", mad_path=[root / "mads"],
                              environ={}), start_host=False)


async def regen_screen(pilot: Pilot[Any], key: str) -> RegenScreen:
    await pilot.press("f9")
    screen = pilot.app.screen
    assert isinstance(screen, RegenScreen)
    await wait_for(lambda: screen.table.row_count == 3, what="three candidates listed")
    screen.table.move_cursor(row=screen.table.get_row_index(key), animate=False)
    await pilot.pause()
    return screen


def test_a_differing_candidate_side_by_side_at_120x36(snap_compare: Any, fixed: Path) -> None:
    """counter#2 selected (≠ differs): the gate passed, the recording differs; "divergence 1 of 1 · counter at its
    event 2", the recorded step ("added": 1) left and the candidate's ("added": 10) right; the code diff below."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await regen_screen(pilot, "counter#2")

    assert snap_compare(app_over(fixed), terminal_size=(120, 36), run_before=run_before)


def test_a_rejected_candidate_at_80x24(snap_compare: Any, fixed: Path) -> None:
    """After `r` on counter#2 its review column says "rejected" and nothing else changed."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await regen_screen(pilot, "counter#2")
        await pilot.press("r")
        await wait_for(lambda: str(screen.table.get_row("counter#2")[2]) == "rejected", what="rejected")
        await pilot.pause()

    assert snap_compare(app_over(fixed), terminal_size=(80, 24), run_before=run_before)


def test_progress_of_a_regeneration_at_100x30(snap_compare: Any, fixed: Path) -> None:
    """While a regeneration runs the line under the table says "re-running 2 of 5 recordings…"."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await regen_screen(pilot, "counter#1")
        screen.post_message(RegenProgress(update={"step": "behaviour", "done": 2, "of": 5}))
        await pilot.pause()

    assert snap_compare(app_over(fixed), terminal_size=(100, 30), run_before=run_before)
