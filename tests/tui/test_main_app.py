"""The workbench over a real `mad mcp` child, driven by keys: completion, sending, restarts, quitting, small screens."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual.message import Message
from textual.pilot import Pilot

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.messages import HostChanged
from madtui.widgets.composer import Composer
from mads.kernel.journal.reader import read_events
from tests.helpers import leftover_children, screen_text, until, write_probe

CORE_MADS = ["dewey", "fiedler", "hopper", "horace", "rogers", "turing"]
MASTER_KEY = "a" * 64
MakeApp = Callable[[], MadApp]


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    """A workbench whose child keeps its state in tmp_path/home and its journal in tmp_path/sessions."""

    def make() -> MadApp:
        environ = {**os.environ, "MAD_MASTER_KEY": MASTER_KEY}
        return MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", environ=environ))

    return make


def composer(app: MadApp) -> Composer:
    return app.main.query_one(Composer)


def horace_lines(app: MadApp) -> list[str]:
    return [line.text for line in app.timeline.mads["horace"].lines]


async def started(pilot: Pilot[Any]) -> MadApp:
    """Wait until the child answers and every core MAD has its pane."""
    app: MadApp = pilot.app  # type: ignore[assignment]
    await until(pilot, lambda: app.host.state == "running" and sorted(app.main.deck.panes) == CORE_MADS
                and all(pane.is_mounted for pane in app.main.deck.panes.values()), "the ecosystem started")
    return app


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


async def test_tab_completes_mad_tool_and_first_required_parameter_and_arrows_walk_the_history(
        make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        line = composer(app)
        assert line.has_focus
        await type_text(pilot, "@Hor")
        await pilot.press("tab")
        assert line.value == "@Horace "
        await type_text(pilot, "wri")
        await pilot.press("tab")
        assert line.value == "@Horace write_file "
        await pilot.press("tab")
        assert line.value == "@Horace write_file path="
        await type_text(pilot, "h.txt ")
        await pilot.press("tab")
        assert line.value == "@Horace write_file path=h.txt content="
        await type_text(pilot, "one")
        await pilot.press("enter")
        assert line.value == ""
        await type_text(pilot, "@Horace read_file path=h.txt")
        await pilot.press("enter")
        await until(pilot, lambda: any(t.startswith("✓ horace_read_file") for t in horace_lines(app)), "both sent")
        await pilot.press("up")
        assert line.value == "@Horace read_file path=h.txt"
        await pilot.press("up")
        assert line.value == "@Horace write_file path=h.txt content=one"
        await pilot.press("up")
        assert line.value == "@Horace write_file path=h.txt content=one"
        await pilot.press("down")
        assert line.value == "@Horace read_file path=h.txt"
        await pilot.press("down")
        assert line.value == ""


async def test_a_command_typed_in_the_composer_writes_the_file_and_horaces_pane_shows_the_result(
        make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await type_text(pilot, "@Horace write_file path=tui.txt content=hello")
        await pilot.press("enter")
        written = tmp_path / "home" / "files" / "tui.txt"
        await until(pilot, lambda: written.exists() and written.read_text() == "hello", "the file written")
        await until(pilot, lambda: "✓ horace_write_file" in screen_text(app)
                    and '→ @human #success { "path": "tui.txt"' in screen_text(app), "the result in Horace's pane")
        pane = app.main.deck.panes["horace"]
        shown = [pane.traffic.render_line(y).text for y in range(pane.traffic.size.height)]
        assert any(text.startswith("✓ horace_write_file") for text in shown)
        assert any(text.startswith("⚙ horace_write_file path=tui.txt") for text in shown)


async def test_prose_addressed_to_nobody_is_answered_in_fiedlers_pane(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await type_text(pilot, "hello, who are you?")
        await pilot.press("enter")
        await until(pilot, lambda: any("No language model is configured" in line.detail
                                       for line in app.timeline.mads["fiedler"].lines if line.detail),
                    "Fiedler's answer in its pane")
        assert any(line.text.startswith("✦→ @human #success No language model")
                   for line in app.timeline.mads["fiedler"].lines)


async def test_b_holds_a_message_to_the_focused_mad_and_e_c_d_release_it(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        horace = app.main.deck.panes["horace"]

        def held() -> dict[str, str]:
            return horace.view.held

        horace.traffic.focus()
        await pilot.press("b")
        await pilot.press("enter")  # no pattern: every message to horace
        await until(pilot, lambda: "breakpoint on horace (b" in " ".join(str(n.message) for n in app._notifications),
                    "the breakpoint set")
        for text in ("@Horace list_files", "@Horace write_file path=kept.txt content=k",
                     "@Horace write_file path=dropped.txt content=d"):
            composer(app).focus()
            await type_text(pilot, text)
            await pilot.press("enter")
            await until(pilot, lambda: len(held()) >= 1, "a message held")
            horace.traffic.focus()
            first = next(iter(held()))
            assert any(line.text.startswith(f"⏸ HELD {first} human: ") for line in horace.view.lines)
            if text.endswith("list_files"):  # e: edit, then continue
                await pilot.press("e")
                box = app.screen.query_one("#prompt-input")
                box.value = "@Horace write_file path=edited.txt content=e"
                await pilot.press("enter")
                await until(pilot, lambda: (tmp_path / "home" / "files" / "edited.txt").exists(), "the edit delivered")
            elif "kept" in text:  # c: continue as it is
                await pilot.press("c")
                await until(pilot, lambda: (tmp_path / "home" / "files" / "kept.txt").exists(), "continued")
            else:  # d: drop
                await pilot.press("d")
                await until(pilot, lambda: any(line.text == f"✗ {first} dropped" for line in horace.view.lines),
                            "dropped")
            await until(pilot, lambda: first not in held(), "released")
        assert not (tmp_path / "home" / "files" / "dropped.txt").exists()
        assert any(line.text.startswith("▶ ") and "continued as: @Horace write_file path=edited.txt" in line.text
                   for line in horace.view.lines)


async def test_f6_on_the_focused_pane_restarts_that_mad_and_its_pane_says_so(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("alt+4")  # horace, zoomed and focused
        await until(pilot, lambda: app.main.focused_mad() == "horace", "horace focused")
        await pilot.press("f6")
        await until(pilot, lambda: any(e["mad"] == "horace" for e in read_events(app.journal, kind=["restart"])),
                    "a restart event for horace in the journal")
        await until(pilot, lambda: "restarted (requested)" in screen_text(app), "the pane says restarted")
        assert not any(e["mad"] != "horace" for e in read_events(app.journal, kind=["restart"]))


async def test_a_killed_ecosystem_is_restarted_into_the_same_journal_and_the_workbench_keeps_working(
        make_app: MakeApp, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    seen: list[Message] = []
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await started(pilot)
        first_pid = app.host.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await until(pilot, lambda: "ecosystem died; restarting" in screen_text(app), "the banner")
        await until(pilot, lambda: app.host.state == "running" and app.host.pid not in (None, first_pid),
                    "a new child")
        await until(pilot, lambda: "restarts 1" in screen_text(app), "the restart counted in the status line")
        await type_text(pilot, "@Horace write_file path=after.txt content=again")
        await pilot.press("enter")
        await until(pilot, lambda: any(t.startswith("✓ horace_write_file") for t in horace_lines(app)),
                    "the send after the restart")
        assert (tmp_path / "home" / "files" / "after.txt").read_text() == "again"
    states = [m.state for m in seen if isinstance(m, HostChanged)]
    assert states[:2] == ["starting", "running"]
    assert "restarting" in states and states.index("running", states.index("restarting")) > 0
    assert [p.name for p in (tmp_path / "sessions").glob("*.db")] == [app.journal.name]
    assert len(list(read_events(app.journal, kind=["session_start"]))) == 2
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
    assert "Unknown child process" not in caplog.text  # the host watched the child without reaping it


async def test_ctrl_q_exits_with_zero_records_session_end_and_leaves_no_child(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app.return_code is not None, "the app exited")
    assert app.return_code == 0
    events = list(read_events(app.journal))
    assert events[-1]["kind"] == "session_end"
    assert leftover_children(app.journal) == []


async def test_at_80x24_paging_and_numbered_zoom_reach_all_six_mads(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        deck = app.main.deck

        def boxes() -> list[str]:
            text = screen_text(app)
            return [name for name in CORE_MADS if f"╭─ {name} " in text]

        await until(pilot, lambda: boxes() == ["dewey", "fiedler"], "two panes side by side")
        assert "1 dewey   2 fiedler   3 hopper   4 horace   5 rogers   6 turing" in screen_text(app)
        assert composer(app).has_focus
        await pilot.press("right")
        await until(pilot, lambda: boxes() == ["hopper", "horace"], "the second page")
        await pilot.press("right")
        await until(pilot, lambda: boxes() == ["rogers", "turing"], "the last page")
        await pilot.press("left", "left")
        await until(pilot, lambda: boxes() == ["dewey", "fiedler"], "back to the first page")
        await pilot.press("alt+6")
        await until(pilot, lambda: boxes() == ["turing"], "turing zoomed from the composer")
        assert deck.zoomed == "turing" and app.main.focused_mad() == "turing"
        await pilot.press("4")
        await until(pilot, lambda: boxes() == ["horace"], "a number key zooms from a focused pane")
        await pilot.press("4")
        await until(pilot, lambda: deck.zoomed is None and len(boxes()) == 2 and "horace" in boxes(),
                    "the same number again shows the page with horace")
        assert app.main.focused_mad() == "horace"
        await pilot.press("escape")
        assert composer(app).has_focus


async def test_the_workbench_runs_in_a_project_that_keeps_its_mads_in_a_mads_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child starts in the user's working directory, whose ./mads must not hide the mads package."""
    from tests.cli.test_cli import GREETER

    project = tmp_path / "project"
    (project / "mads").mkdir(parents=True)
    (project / "mads" / "greeter.py").write_text(GREETER)
    monkeypatch.chdir(project)
    environ = {**os.environ, "MAD_MASTER_KEY": MASTER_KEY}
    environ.pop("MAD_PATH", None)
    app = MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", environ=environ,
                             mad_path=[Path("mads").resolve()]))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.host.state == "running" and "greeter" in app.main.deck.panes,
                    "the ecosystem with the project's MAD", timeout=30)
        assert await app.call("greeter_greet", {"name": "bo"}) == "hello bo"
        assert sorted(app.main.deck.panes) == sorted([*CORE_MADS, "greeter"])
        await pilot.press("ctrl+q")


async def test_isolated_mads_have_their_panes_answer_the_composer_and_show_their_own_process(tmp_path: Path) -> None:
    folder = write_probe(tmp_path / "mads")
    environ = {**os.environ, "MAD_MASTER_KEY": MASTER_KEY}
    app = MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", mad_path=[folder],
                             isolate=["horace"], environ=environ))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.host.state == "running" and "probe" in app.main.deck.panes
                    and all(pane.is_mounted for pane in app.main.deck.panes.values()), "the ecosystem started")
        assert {"probe_ping", "horace_write_file"} <= {t["name"] for t in app.host.tools}
        await type_text(pilot, "@Probe ping text=from-the-composer")
        await pilot.press("enter")
        await until(pilot, lambda: any("from-the-composer" in line.text for line in app.timeline.mads["probe"].lines)
                    and any(line.text.startswith("✓ probe_ping") for line in app.timeline.mads["probe"].lines),
                    "the isolated MAD's answer in its pane")
        await type_text(pilot, "@Horace write_file path=iso.txt content=walled")
        await pilot.press("enter")
        written = tmp_path / "home" / "files" / "iso.txt"
        await until(pilot, lambda: written.exists() and written.read_text() == "walled", "Horace, isolated, wrote")
        status = await app.host.call("mad_status")
        for name in ("probe", "horace"):
            assert status["mads"][name]["placement"] == "isolated"
            assert status["mads"][name]["pid"] != app.host.pid
        await until(pilot, lambda: f"pid {status['mads']['probe']['pid']}" in screen_text(app)
                    and "own cpu" in screen_text(app), "the probe pane's header naming its own process")
