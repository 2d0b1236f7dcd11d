"""`mad tui` tried as a new user would, in a real terminal (tmux) at 80x24 and 200x50.

The user sees all six MADs, types `@Horace write_file path=tui.txt content=hello` and Enter,
finds the file under MAD_HOME/files and the result in Horace's pane, and quits with ctrl+q: the exit
status is 0, the journal ends with session_end and no `mad mcp` child is left.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mads.kernel.journal.reader import read_events
from tests.helpers import Terminal, start_terminal, wait_until

ROOT = Path(__file__).resolve().parents[2]
CORE_MADS = ["dewey", "fiedler", "hopper", "horace", "rogers", "turing"]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


@pytest.fixture(params=[(80, 24), (200, 50)], ids=lambda size: f"{size[0]}x{size[1]}")
def terminal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Terminal]:
    """`mad tui` started in a detached tmux session of the given size; the shell writes its exit status."""
    env = {"MAD_MASTER_KEY": "a" * 64, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_PROVIDER": "offline", "MAD_PATH": ""}
    term = start_terminal(tmp_path, env, ["tui"], size=request.param)
    try:
        yield term
    finally:
        term.close()


def mad_mcp_children(folder: Path) -> list[psutil.Process]:
    """Live `mad mcp` processes started for this folder."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "madtui mcp" in cmdline and str(folder) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_a_new_user_writes_a_file_from_the_composer_and_quits_cleanly(terminal: Terminal) -> None:
    terminal.wait_for(lambda s: " · running · " in s and all(name in s for name in CORE_MADS),
                      "the six MADs on screen")
    first = terminal.screen()
    for number, name in enumerate(CORE_MADS, 1):
        assert f"{number} {name}" in first
    terminal.type("@Horace write_file path=tui.txt content=hello")
    terminal.press("Enter")
    written = terminal.folder / "home" / "files" / "tui.txt"
    wait_until(lambda: written.exists() and written.read_text() == "hello", what="the file written")
    terminal.wait_for(lambda s: "✓ horace_write_file" in s, "the result line in Horace's pane")
    assert "╭─ horace " in terminal.screen()
    terminal.press("C-q")
    exit_file = terminal.folder / "exit.txt"
    wait_until(lambda: exit_file.exists() and exit_file.read_text().endswith("\n"), what="mad tui exited")
    assert exit_file.read_text().strip() == "EXIT:0"
    (journal,) = (terminal.folder / "sessions").glob("*.db")
    assert list(read_events(journal))[-1]["kind"] == "session_end"
    # a clean session is one file: no empty stderr log, no -wal/-shm (reading it above added none)
    assert [p.name for p in (terminal.folder / "sessions").iterdir()] == [journal.name]
    assert mad_mcp_children(terminal.folder) == []


@pytest.mark.parametrize("terminal", [(80, 24)], indirect=True, ids=["80x24"])
def test_f8_hands_the_terminal_to_a_replay_and_takes_it_back(terminal: Terminal) -> None:
    terminal.wait_for(lambda s: " · running · " in s, "the ecosystem running")
    terminal.type("@Horace write_file path=a.txt content=hi")
    terminal.press("Enter")
    terminal.wait_for(lambda s: "✓ horace_write_file" in s, "the result line in Horace's pane")
    terminal.press("F8")
    terminal.wait_for(lambda s: "sessions · " in s and "● " in s, "the live recording listed")
    terminal.press("Enter")
    terminal.wait_for(lambda s: "paused 1x" in s and "event 1/" in s, "mad replay at its first event")
    terminal.press(".")
    terminal.wait_for(lambda s: "event 2/" in s, "the replay stepping")
    terminal.press("C-q")
    terminal.wait_for(lambda s: "sessions · " in s and "paused 1x" not in s, "the workbench back")
    terminal.press("Escape")
    terminal.wait_for(lambda s: "╭─ horace " in s or "╭─ dewey " in s, "the panes again")
    terminal.press("C-q")
    exit_file = terminal.folder / "exit.txt"
    wait_until(lambda: exit_file.exists() and exit_file.read_text().endswith("\n"), what="mad tui exited")
    assert exit_file.read_text().strip() == "EXIT:0"
    assert mad_mcp_children(terminal.folder) == []


def workbench_process(folder: Path) -> psutil.Process:
    """The `mad tui` process started for this folder."""
    for process in psutil.process_iter(["cmdline", "environ"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        environ = process.info["environ"] or {}
        if "madtui tui" in cmdline and environ.get("MAD_HOME") == str(folder / "home"):
            return process
    raise AssertionError(f"no mad tui process for {folder}")


@pytest.mark.parametrize("terminal", [(80, 24)], indirect=True, ids=["80x24"])
def test_sigterm_quits_as_ctrl_q_does(terminal: Terminal) -> None:
    terminal.wait_for(lambda s: " · running · " in s, "the ecosystem running")
    workbench_process(terminal.folder).terminate()
    exit_file = terminal.folder / "exit.txt"
    wait_until(lambda: exit_file.exists() and exit_file.read_text().endswith("\n"), what="mad tui exited")
    assert exit_file.read_text().strip() == "EXIT:0"
    assert "mad · " not in terminal.screen()  # the terminal was given back, not left showing the workbench
    (journal,) = (terminal.folder / "sessions").glob("*.db")
    assert list(read_events(journal))[-1]["kind"] == "session_end"
    assert [p.name for p in (terminal.folder / "sessions").iterdir()] == [journal.name]
    assert mad_mcp_children(terminal.folder) == []


def test_sigterm_quits_a_replay_and_gives_the_terminal_back(tmp_path: Path) -> None:
    from mads.kernel.events import Record
    from mads.kernel.journal import JournalWriter

    journal = tmp_path / "sessions" / "20260101T000000.000Z-abcdef.db"
    writer = JournalWriter(journal)
    writer.handle(Record("session_start", payload={"session_id": journal.stem, "mads": ["horace"], "modules": {}}))
    writer.handle(Record("state", "horace", payload={"state": "running"}))
    writer.close()
    command = (f"cd {shlex.quote(str(tmp_path))} && env PYTHONPATH={shlex.quote(str(ROOT))} TERM=xterm-256color "
               f"{shlex.quote(sys.executable)} -m madtui replay {shlex.quote(str(journal))};"
               f" echo EXIT:$? > {shlex.quote(str(tmp_path / 'exit.txt'))}")
    term = Terminal(socket=tmp_path / "tmux.sock", name="replay", folder=tmp_path)
    term.tmux("-f", "/dev/null", "new-session", "-d", "-s", term.name, "-x", "80", "-y", "24", command,
              ";", "set-option", "-t", term.name, "remain-on-exit", "on")
    try:
        term.wait_for(lambda s: "event 1/2" in s, "the replay at its first event")
        (replay,) = [p for p in psutil.process_iter(["cmdline"])
                     if (p.info["cmdline"] or [])[1:] == ["-m", "madtui", "replay", str(journal)]]
        replay.terminate()
        exit_file = tmp_path / "exit.txt"
        wait_until(lambda: exit_file.exists() and exit_file.read_text().endswith("\n"), what="mad replay exited")
        assert exit_file.read_text().strip() == "EXIT:0"
        assert "event 1/2" not in term.screen()
    finally:
        subprocess.run(["tmux", "-S", str(term.socket), "kill-server"], capture_output=True, timeout=10)
