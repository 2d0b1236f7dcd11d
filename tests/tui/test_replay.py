"""Replay: the cursor over a recording (headless), `mad replay` driven by keys, and its snapshots."""
from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Static

from benchmarks.replay import generate_journal
from madtui import replay_app
from madtui.cli import cli
from madtui.replay import WINDOW, ReplayCursor, parse_position
from madtui.replay_app import ReplayApp
from madtui.screens.resources import ResourcesScreen
from madtui.timeline import Line, Timeline
from madtui.widgets.cpu_graph import CpuGraph
from madtui.widgets.replay_bar import ReplayBar
from madtui.widgets.traffic_view import TrafficView
from mads.kernel.errors import UsageError
from mads.kernel.events import Record
from mads.kernel.journal import JournalWriter
from mads.kernel.journal.reader import read_events

SESSION_ID = "20261125T120000.000Z-feed01"
MADS = ["dewey", "horace", "rogers"]
START = 1795608000.0
"""2026-11-25 12:00:00 UTC; events are half a second apart."""
STEP = 0.5


def message(sender: str, content: str, recipients: list[str], tags: list[str] | None = None) -> dict[str, Any]:
    return {"message": {"id": f"m-{sender}-{len(content)}", "conversation": "main", "sender": sender,
                        "content": content, "mentions": recipients, "tags": tags or [], "kind": "deterministic"},
            "recipients": recipients}


def sample(cpu: dict[str, float]) -> dict[str, Any]:
    return {"process": {"cpu_percent": sum(cpu.values()), "rss": 40 * 1024 * 1024, "threads": 4},
            "mads": {name: {"state": "running", "cpu_percent": value, "cpu_seconds": value / 100,
                            "messages_in_per_s": 1.0, "messages_out_per_s": 0.0, "mailbox_depth": 0, "tokens": 0,
                            "cost": 0.0, "tool_calls": 1, "errors": 0} for name, value in cpu.items()}}


EVENTS = [
    Record("session_start", payload={"session_id": SESSION_ID, "command": "mcp", "mads": MADS,
                                    "modules": {f"mads.{m}": f"{sha}{'0' * 56}" for m, sha in
                                                zip(MADS, ["2f662206", "e15c5465", "848ff9c0"])}}),
    *[Record("state", name, payload={"state": "running"}) for name in MADS],
    Record("message", "human", payload=message("human", "@Horace write_file path=a.txt content=one", ["horace"])),
    Record("tool_call", "horace", payload={"tool": "horace_write_file", "caller": "horace",
                                          "arguments": {"path": "a.txt", "content": "one"}}),
    Record("tool_result", "horace", payload={"tool": "horace_write_file", "ok": True, "duration_ms": 1.2,
                                            "result": {"path": "a.txt", "version": 1}}),
    Record("sample", payload=sample({"dewey": 1.0, "horace": 5.0, "rogers": 0.5})),
    Record("message", "horace", payload=message("horace", "@human #success version 1 of a.txt", [], ["success"])),
    Record("log", "horace", payload={"level": "info", "message": "wrote a.txt"}),
    Record("tool_call", "dewey", payload={"tool": "dewey_search", "caller": "dewey", "arguments": {"query": "x"}}),
    Record("tool_result", "dewey", payload={"tool": "dewey_search", "ok": False, "duration_ms": 0.7,
                                           "error": "the index is empty"}),
    Record("sample", payload=sample({"dewey": 9.0, "horace": 2.0, "rogers": 0.5})),
    Record("crash", "rogers", payload={"handler": "on_observe", "error": "KeyError: 'conversation'",
                                      "traceback": "Traceback (most recent call last):\nKeyError: 'conversation'"}),
    Record("restart", "rogers", payload={"reason": "crash", "restarts": 1}),
    Record("reload", "horace", payload={"action": "reloaded", "new_hash": "ab" * 32}),
    Record("message", "dewey", payload=message("dewey", "@human #error the index is empty", [], ["error"])),
    Record("tool_call", "newbie", payload={"tool": "newbie_hello", "caller": "newbie", "arguments": {}}),
    Record("tool_result", "newbie", payload={"tool": "newbie_hello", "ok": True, "duration_ms": 0.1, "result": "hi"}),
    Record("sample", payload=sample({"dewey": 3.0, "horace": 7.0, "rogers": 1.5, "newbie": 0.2})),
    Record("reload_failed", "horace", payload={"error": "SyntaxError: invalid syntax (horace.py, line 3)"}),
    Record("llm_result", "fiedler", payload={"caller": "dewey", "model": "scripted", "input_tokens": 30,
                                            "output_tokens": 12, "ok": True, "text": "done"}),
    Record("session_end", payload={"reason": "stopped"}),
]
"""seq 1-4 start; 12 a refused tool call; 14 a crash; 16 a reload; 17 a message tagged error; 18 a new MAD;
21 a failed reload; 23 the end."""
COUNT = len(EVENTS)
ERRORS = [12, 14, 17, 21]


def write_session(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = JournalWriter(path)
    for offset, event in enumerate(EVENTS):
        writer.handle(Record(event.kind, event.mad, payload=event.payload, wall=START + offset * STEP))
    writer.flush()
    writer.close()
    return path


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return write_session(tmp_path / "sessions" / f"{SESSION_ID}.db")


def built_to(path: Path, seq: int) -> Timeline:
    """A Timeline made the plain way: every event up to seq applied in order."""
    timeline = Timeline()
    timeline.apply([e for e in read_events(path) if e["seq"] <= seq])
    return timeline


def assert_same(cursor: ReplayCursor, path: Path) -> None:
    expected = built_to(path, cursor.position)
    assert list(cursor.timeline.mads) == list(expected.mads)
    assert cursor.timeline.mads == expected.mads
    mine = {k: v for k, v in vars(cursor.timeline).items() if k not in ("mads", "notices")}
    assert mine == {k: v for k, v in vars(expected).items() if k not in ("mads", "notices")}


# the cursor ---------------------------------------------------------------------------

def test_every_position_reached_forward_back_or_by_seek_shows_what_applying_the_events_up_to_it_shows(
        journal: Path) -> None:
    cursor = ReplayCursor(journal, window=4, checkpoint_every=3)
    assert cursor.position == 1
    for _ in range(COUNT - 1):
        cursor.step(1)
        assert_same(cursor, journal)
    assert cursor.at_end
    for _ in range(COUNT - 1):
        cursor.step(-1)
        assert_same(cursor, journal)
    assert cursor.position == 1
    chance = random.Random(7)
    for _ in range(60):
        cursor.seek(chance.randint(1, COUNT))
        assert_same(cursor, journal)


def test_a_mad_that_appears_mid_session_has_no_view_before_its_first_event_and_keeps_its_view_object(
        journal: Path) -> None:
    cursor = ReplayCursor(journal, window=4, checkpoint_every=3)
    cursor.seek(COUNT)
    newbie = cursor.timeline.mads["newbie"]
    cursor.seek(17)
    assert "newbie" not in cursor.timeline.mads
    cursor.seek(19)
    assert cursor.timeline.mads["newbie"] is newbie
    assert [line.text for line in newbie.lines] == ["⚙ newbie_hello ", "✓ newbie_hello (0.1 ms) hi"]


def test_stepping_back_cuts_each_panes_lines_at_the_cursor_and_stepping_on_brings_them_back(journal: Path) -> None:
    cursor = ReplayCursor(journal)
    cursor.seek(COUNT)
    horace = cursor.timeline.mads["horace"]
    lines = list(horace.lines)
    cursor.seek(7)
    assert [line.seq for line in horace.lines] == [5, 6, 7]
    cursor.seek(COUNT)
    assert horace.lines == lines


def test_jumps_find_the_next_and_previous_error_crash_and_reload(journal: Path) -> None:
    cursor = ReplayCursor(journal)
    found = []
    while (seq := cursor.find("error", 1)) is not None:
        found.append(seq)
        cursor.seek(seq)
    assert found == ERRORS
    assert cursor.find("error", -1) == 17
    assert cursor.find("crash", -1) == 14 and cursor.find("crash", 1) is None
    assert cursor.find("reload", -1) == 16
    cursor.seek(1)
    assert cursor.find("reload", 1) == 16 and cursor.find("error", -1) is None
    with pytest.raises(UsageError):
        cursor.find("bogus", 1)


def test_a_second_step_moves_to_the_state_one_second_later_or_earlier(journal: Path) -> None:
    cursor = ReplayCursor(journal)
    cursor.seek(5)
    cursor.step_seconds(1)
    assert cursor.position == 7 and cursor.wall == START + 6 * STEP
    cursor.step_seconds(-1.5)
    assert cursor.position == 4


def test_playback_applies_the_events_up_to_the_play_clock_and_no_more_than_asked(journal: Path) -> None:
    cursor = ReplayCursor(journal)
    cursor.advance(START + 2.0, limit=100)
    assert cursor.position == 5
    cursor.advance(float("inf"), limit=3)
    assert cursor.position == 8


def test_go_to_reads_an_event_a_time_of_day_an_offset_from_the_start_or_start_and_end(journal: Path) -> None:
    cursor = ReplayCursor(journal)
    assert parse_position("#12", cursor) == 12 and parse_position("12", cursor) == 12
    assert parse_position("12:00:03", cursor) == 7
    assert parse_position("12:00", cursor) == 1
    assert parse_position("+4", cursor) == 9 and parse_position("+0:04", cursor) == 9
    assert parse_position("2026-11-25T12:00:05Z", cursor) == 11
    assert parse_position("end", cursor) == COUNT and parse_position("start", cursor) == 1
    with pytest.raises(UsageError):
        parse_position("soon", cursor)


def test_opening_a_100k_event_journal_reads_one_window_of_it(tmp_path: Path) -> None:
    path = generate_journal(tmp_path / "big.db", 100_000)
    started = time.perf_counter()
    cursor = ReplayCursor(path)
    took = time.perf_counter() - started
    assert cursor.rows_read == WINDOW and cursor.last_seq == 100_000
    assert took < 1.0
    assert cursor.find("crash", 1) == 11 and cursor.seq_at(cursor.last_wall) == 100_000
    cursor.step(5)
    cursor.step(-2)
    assert cursor.position == 4 and cursor.rows_read == WINDOW
    cursor.close()


def test_the_cursor_is_headless() -> None:
    code = "import sys, madtui.replay; print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[2])
    assert result.stdout.strip() == "[]"


def test_a_file_that_is_not_a_journal_or_holds_no_events_is_a_usage_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not sqlite")
    with pytest.raises(UsageError, match="not a mad journal"):
        ReplayCursor(text)
    empty = tmp_path / "empty.db"
    JournalWriter(empty).close()
    with pytest.raises(UsageError, match="holds no events"):
        ReplayCursor(empty)


# the app -------------------------------------------------------------------------------

def bar_text(app: ReplayApp) -> str:
    return str(app.screen.query_one(ReplayBar).content)


def pane_state(app: ReplayApp) -> dict[str, tuple[str, list[str]]]:
    """What each pane shows: its title line and the lines of its traffic."""
    shown = {}
    for name, pane in app.main.deck.panes.items():
        title = str(pane.query_one("#title", Static).content)
        shown[name] = (title, [line.text for line in pane.traffic._visible])
    return shown


def expected_panes(path: Path, seq: int) -> dict[str, tuple[str, list[str]]]:
    expected = built_to(path, seq)
    return {name: (view.state, [line.text for line in view.lines if line.kind != "log"])
            for name, view in expected.mads.items() if name != "kernel"}


def assert_panes_at_cursor(app: ReplayApp, path: Path) -> None:
    assert app.cursor is not None
    shown = pane_state(app)
    expected = expected_panes(path, app.cursor.position)
    assert list(shown) == list(expected)
    for name, (state, lines) in expected.items():
        title, visible = shown[name]
        assert f"{name}[/b]" in title and state in title, (name, title)
        assert visible == lines, name


async def ready(pilot: Pilot[Any]) -> ReplayApp:
    app: ReplayApp = pilot.app  # type: ignore[assignment]
    deadline = time.monotonic() + 10
    while not (app.cursor is not None and app.main.is_mounted and app.main.deck.panes
               and all(pane.is_mounted for pane in app.main.deck.panes.values())):
        assert time.monotonic() < deadline, "the replay did not open"
        await pilot.pause()
    await pilot.pause()
    return app


async def test_keys_step_forward_and_back_and_the_bar_shows_the_time_and_event_number(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert "12:00:00.000 UTC +0:00:00 · event 1/23 · session_start" in bar_text(app)
        await pilot.press(*["full_stop"] * 6)
        await pilot.pause()
        assert app.cursor is not None and app.cursor.position == 7
        assert "12:00:03.000 UTC +0:00:03 · event 7/23 · tool_result horace" in bar_text(app)
        assert_panes_at_cursor(app, journal)
        await pilot.press("comma", "comma")
        await pilot.pause()
        assert app.cursor.position == 5 and "event 5/23" in bar_text(app)
        assert_panes_at_cursor(app, journal)
        await pilot.press("greater_than_sign")
        await pilot.pause()
        assert app.cursor.position == 7
        await pilot.press("less_than_sign")
        await pilot.pause()
        assert app.cursor.position == 5
        assert "‖ paused 1x" in bar_text(app)


async def test_e_jumps_to_each_next_error_with_every_pane_at_the_cursor_and_shift_e_goes_back(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        assert app.cursor is not None
        for seq in ERRORS:
            await pilot.press("e")
            await pilot.pause()
            assert app.cursor.position == seq
            assert f"event {seq}/23" in bar_text(app)
            assert_panes_at_cursor(app, journal)
        assert "newbie" in app.main.deck.panes
        await pilot.press("E", "E")
        await pilot.pause()
        assert app.cursor.position == 14
        assert "newbie" not in app.main.deck.panes
        assert_panes_at_cursor(app, journal)
        assert "✗ crashed in on_observe" in pane_state(app)["rogers"][1][-1]
        await pilot.press("r")
        await pilot.pause()
        assert app.cursor.position == 16
        await pilot.press("r", "r")
        await pilot.pause()
        assert app.cursor.position == 21
        assert any("no reload after event 21" in n.message for n in app._notifications)


async def test_a_jump_on_a_narrow_screen_turns_to_the_page_of_the_mad_it_lands_on(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.main.deck.visible_names() == ["dewey", "horace"]
        await pilot.press("c")
        await pilot.pause()
        assert app.cursor is not None and app.cursor.position == 14
        assert "rogers" in app.main.deck.visible_names()


async def test_go_to_moves_to_a_time_and_an_unreadable_answer_keeps_the_dialog_open(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("g")
        await pilot.pause()
        await pilot.press(*"later", "enter")
        await pilot.pause()
        assert "not a time or an event" in str(app.screen.query_one("#goto-error", Static).content)
        field = app.screen.query_one(Input)
        field.value = "12:00:08"
        await pilot.press("enter")
        await pilot.pause()
        assert app.cursor is not None and app.cursor.position == 17
        assert_panes_at_cursor(app, journal)
        assert "12:00:08.000 UTC +0:00:08" in bar_text(app)


async def test_playing_at_max_speed_reaches_the_end_and_pauses(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("plus", "plus", "plus", "plus")
        assert app.speed is None and "‖ paused max" in bar_text(app)
        await pilot.press("space")
        deadline = time.monotonic() + 10
        while app.playing:
            assert time.monotonic() < deadline, "playback did not reach the end"
            await pilot.pause(0.05)
        assert app.cursor is not None and app.cursor.at_end
        assert any(n.message == "the end of the recording" for n in app._notifications)
        assert_panes_at_cursor(app, journal)
        await pilot.press("minus")
        assert "‖ paused 100x" in bar_text(app)


async def test_playing_at_1x_follows_the_clock(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("space")
        await pilot.pause(0.6)
        await pilot.press("space")
        assert app.cursor is not None and 2 <= app.cursor.position <= 4
        assert not app.playing


async def test_the_resources_screen_moves_with_the_cursor(journal: Path) -> None:
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ResourcesScreen)
        assert "event 1/23" in bar_text(app)
        await pilot.press(*["full_stop"] * 13)
        await pilot.pause()
        graph = app.screen.query_one(CpuGraph)
        assert app.screen.table.selected_name == "dewey"
        assert graph.history == [1.0, 9.0]
        await pilot.press("comma", "comma", "comma", "comma", "comma")
        await pilot.pause()
        assert graph.history == [1.0]
        assert "event 9/23" in bar_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert not app.screen.profile_panel.running
        await app.move(COUNT)
        await pilot.pause()
        assert "newbie" in app.screen.table.names()
        await app.move(14)
        await pilot.pause()
        assert app.screen.table.names() == ["dewey", "horace", "rogers"]


async def test_a_seek_past_where_the_cursor_has_been_runs_in_chunks_that_esc_stops(
        journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_app, "SEEK_CHUNK", 3)
    app = ReplayApp(journal)
    seen: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        original = app.show_cursor

        async def watching(changed: set[str]) -> None:
            if app.seeking is not None:
                seen.append(app.seeking)
                if stop_after and len(seen) == stop_after:
                    await pilot.press("escape")
            await original(changed)

        app.show_cursor = watching  # type: ignore[method-assign]
        stop_after = 2
        await app.move(COUNT)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.cursor is not None and 1 < app.cursor.position < COUNT
        assert app.seeking is None and "seeking" not in bar_text(app)
        assert_panes_at_cursor(app, journal)
        seen.clear()
        stop_after = 0
        await app.move(COUNT)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.cursor.position == COUNT
        assert len(seen) >= 4 and seen == sorted(seen) and seen[0] == 0.0
        assert_panes_at_cursor(app, journal)


class TrafficOnly(App[None]):
    """One TrafficView over a list of lines the test changes."""

    def __init__(self, lines: list[Line]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        yield TrafficView(self.lines)


async def test_a_traffic_view_lets_go_of_lines_cut_from_either_end_of_its_source_and_takes_new_ones() -> None:
    lines = [Line(seq, START, "log" if seq % 5 == 0 else "out", f"line {seq}") for seq in range(1, 41)]
    app = TrafficOnly(lines)
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(TrafficView)
        view.take_in_lines()
        assert len(view._visible) == 32 and view._visible[-1].seq == 39  # log lines hidden
        del lines[20:]  # replay stepped back to seq 20
        view.take_in_lines()
        assert view._visible[-1].seq == 19 and len(view._visible) == 16
        lines.extend(Line(seq, START, "out", f"again {seq}") for seq in range(21, 24))
        view.take_in_lines()
        assert [line.text for line in view._visible[-3:]] == ["again 21", "again 22", "again 23"]
        del lines[:10]  # trimmed at the start past MAX_LINES
        view.take_in_lines()
        assert view._visible[0].seq == 11 and view._visible[-1].seq == 23
        await pilot.pause()


# the command ------------------------------------------------------------------------------

def test_mad_replay_of_an_unknown_session_or_a_file_that_is_not_a_journal_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["replay", "nosuch", "--sessions", str(tmp_path)])
    assert result.exit_code == 2 and "no session 'nosuch'" in result.output
    bad = tmp_path / "bad.db"
    bad.write_text("hello")
    result = runner.invoke(cli, ["replay", str(bad)])
    assert result.exit_code == 2 and "not a mad journal" in result.output


def test_mad_replay_is_listed_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["replay", "--help"])
    assert result.exit_code == 0 and "Example: mad replay" in result.output


# snapshots ---------------------------------------------------------------------------------

def at_crash() -> Callable[[Pilot[Any]], Any]:
    """A run_before that jumps to the first crash and clears the notice the jump gives."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        await pilot.press("c")
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_replay_at_the_crash(snap_compare: Any, journal: Path, size: tuple[int, int]) -> None:
    """After `c` (next crash): the orange replay bar `‖ paused 1x · 12:00:06.500 UTC +0:00:06 · event 14/23 · crash
    rogers`; the status line `mad · 20261125T120000.000Z-feed01 · recorded · 14 events · cpu 12% · rss 40 MB`;
    panes titled `N name ● running <8-hex version>`. At 80x24 the page turned to rogers (tabs `2 horace` and
    `3 rogers` in reverse): horace with the write (cyan ←, yellow ⚙, grey ✓, green `→ @human #success`) beside
    rogers with its red `✗1` and red `✗ crashed in on_observe: KeyError…`. At 160x48 dewey too, with its red `✗1`
    and `✗ dewey_search (0.7 ms) the index is empty`. No `restarted` line yet, no `newbie` pane, no composer;
    the footer offers Play/Pause, Step and Next error (160x48 also Go to and Resources)."""
    assert snap_compare(ReplayApp(journal), terminal_size=size, run_before=at_crash())
