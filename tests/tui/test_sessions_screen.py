"""F8: every recording newest first, the live one marked; / searches their messages; Enter opens a replay."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from mads.kernel import MAD, Config, Ecosystem, tool
from mads.kernel.journal import record_session
from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.sessions import SessionsScreen
from tests.helpers import until


class Parrot(MAD):
    """Says what it is told."""

    @tool
    async def say(self, text: str) -> str:
        """Repeat the text."""
        return text


async def recording(root: Path, text: str) -> Path:
    """A real recorded session in root/sessions in which @human has Parrot say the text."""
    eco = Ecosystem(Config(home=root / "home", include_package=False, environ={}, sample_interval=0), mads=[Parrot])
    with record_session(eco, root / "sessions", argv=["mad", "send"], command="send") as rec:
        async with eco:
            await eco.send(f"@Parrot say text={text}")
    assert rec is not None
    return rec.path


def app_over(root: Path, live: Path) -> MadApp:
    return MadApp(HostOptions(journal=live, home=root / "home", sessions=root / "sessions"), start_host=False)


def screen_of(app: MadApp) -> SessionsScreen:
    assert isinstance(app.screen, SessionsScreen), app.screen
    return app.screen


async def open_sessions(pilot: Pilot[Any], rows: int) -> SessionsScreen:
    """Press F8 and wait until the screen lists this many recordings."""
    await pilot.press("f8")
    screen = screen_of(pilot.app)  # type: ignore[arg-type]
    await until(pilot, lambda: screen.table.row_count == rows, f"{rows} recording(s) listed")
    return screen


def row_keys(screen: SessionsScreen) -> list[str]:
    return [row.key.value for row in screen.table.ordered_rows if row.key.value is not None]


async def test_f8_lists_every_recording_newest_first_and_enter_replays_the_selected_one(tmp_path: Path) -> None:
    older = await recording(tmp_path, "wombat")
    newer = await recording(tmp_path, "platypus")
    app = app_over(tmp_path, live=newer)
    opened: list[Path] = []
    app.open_replay = opened.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_sessions(pilot, rows=2)
        assert row_keys(screen) == [newer.stem, older.stem]
        first = screen.table.get_row_at(0)
        assert str(first[0]) == f"● {newer.stem}" and first[1] == "send"  # the live one is marked
        assert str(screen.table.get_row_at(1)[0]) == f"  {older.stem}"
        await pilot.press("down", "enter")
        assert opened == [older]
        await pilot.press("escape")
        assert not isinstance(app.screen, SessionsScreen)


async def test_slash_searches_the_messages_of_every_session_and_esc_lists_them_all_again(tmp_path: Path) -> None:
    older = await recording(tmp_path, "wombat")
    await recording(tmp_path, "platypus")
    app = app_over(tmp_path, live=tmp_path / "sessions" / "not-yet.db")
    opened: list[Path] = []
    app.open_replay = opened.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_sessions(pilot, rows=2)
        await pilot.press("slash", *"wombat", "enter")
        await until(pilot, lambda: screen.table.row_count >= 1 and "event" in
                    [str(c.label) for c in screen.table.columns.values()], "the search hits")
        hits = [screen.table.get_row_at(i) for i in range(screen.table.row_count)]
        assert {str(row[0]).strip() for row in hits} == {older.stem}
        assert all("[wombat]" in str(row[4]) for row in hits)
        await pilot.press("enter")
        assert opened == [older]
        await pilot.press("slash", "escape")
        await until(pilot, lambda: screen.table.row_count == 2 and "events" in
                    [str(c.label) for c in screen.table.columns.values()], "every recording again")


async def test_without_a_terminal_to_hand_over_replay_says_what_to_run(tmp_path: Path) -> None:
    path = await recording(tmp_path, "wombat")
    app = app_over(tmp_path, live=path)
    notices: list[str] = []
    app.notify = lambda message, **kwargs: notices.append(message)  # type: ignore[method-assign,assignment,misc]
    async with app.run_test(size=(120, 30)) as pilot:
        await open_sessions(pilot, rows=1)
        await pilot.press("enter")
        assert notices == [f"this terminal cannot be handed over; run: mad replay {path.stem}"]


PARROT_V1 = '''\
from mads.kernel import MAD, tool


class Echo(MAD):
    """Says what it is told."""

    @tool
    async def say(self, text: str) -> str:
        """Repeat the text."""
        return text
'''


async def folder_recording(root: Path, text: str) -> Path:
    """A recording of a MAD loaded from a MAD_PATH folder, so a re-run in another process finds its code."""
    folder = root / "mads"
    folder.mkdir(exist_ok=True)
    (folder / "echo.py").write_text(PARROT_V1)
    eco = Ecosystem(Config(home=root / "home", include_package=False, mad_path=[folder], environ={},
                           sample_interval=0))
    with record_session(eco, root / "sessions", argv=["mad", "send"], command="send") as rec:
        async with eco:
            await eco.send(f"@Echo say text={text}")
    assert rec is not None
    return rec.path


async def test_shift_r_reruns_the_selected_recording_on_the_current_code_and_selects_the_new_one(
        tmp_path: Path) -> None:
    source = await folder_recording(tmp_path, "wombat")
    (tmp_path / "mads" / "echo.py").write_text(PARROT_V1.replace("return text", "return text.upper()"))
    app = app_over(tmp_path, live=tmp_path / "sessions" / "not-yet.db")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sessions(pilot, rows=1)
        await pilot.press("R")
        await until(pilot, lambda: screen.rerunning is None and screen.table.row_count == 2,
                    "the re-run reported and recorded", timeout=120)
        report = str(screen.query_one("#sessions-report").content)
        assert "echo       DIFFERS at its event" in report and "behaviour differs: echo" in report, report
        assert "WOMBAT" in report
        rerun = screen.selected
        assert rerun is not None and rerun != source and rerun.parent == source.parent  # the new recording
        opened: list[Path] = []
        app.open_replay = opened.append  # type: ignore[method-assign]
        await pilot.press("enter")
        assert opened == [rerun]


async def test_a_rerun_that_cannot_run_says_why_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "20260101T000000.000Z-000000.db").write_text("not a journal\n" * 50)
    await recording(tmp_path, "wombat")
    app = app_over(tmp_path, live=tmp_path / "sessions" / "not-yet.db")
    notices: list[str] = []
    app.notify = lambda message, **kwargs: notices.append(message)  # type: ignore[method-assign,assignment,misc]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sessions(pilot, rows=1)
        assert "1 unreadable file skipped" in str(screen.query_one("#sessions-title").content)
        screen.paths[row_keys(screen)[0]] = tmp_path / "sessions" / "20260101T000000.000Z-000000.db"
        await pilot.press("R")
        await until(pilot, lambda: screen.rerunning is None and bool(notices), "the failure", timeout=60)
        assert notices[-1].startswith("re-run failed: ") and "\n" not in notices[-1]
