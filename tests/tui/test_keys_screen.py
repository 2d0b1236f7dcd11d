"""F1 and ?: the workbench's own keys first, grouped, then the focused widget's keys."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.keys import GROUPS, KeysScreen


def app_over(tmp_path: Path) -> MadApp:
    return MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", environ={}), start_host=False)


async def test_f1_lists_the_groups_first_then_the_composers_editing_keys(tmp_path: Path) -> None:
    app = app_over(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        assert [title for title, _ in GROUPS] == ["Panes", "Composer", "Screens", "Replay (mad replay)"]
        focused = screen.focused_keys()
        assert type(screen.focused_widget).__name__ == "Composer" and focused  # its editing keys come after
        await pilot.press("escape")
        assert not isinstance(app.screen, KeysScreen)


def test_f1_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """The keys screen over the workbench: "Panes" first (tab / shift+tab, 1-9 zoom, ← →, enter / click, f3, f4,
    f6, b, c / e / d), then "Composer", "Screens" and "Replay" below the fold, the composer's own editing keys
    last."""
    async def run_before(pilot: Any) -> None:
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app_over(tmp_path), terminal_size=(80, 24), run_before=run_before)
