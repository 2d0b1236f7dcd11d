"""Snapshot tests of the main screen over a synthetic recorded session, at a small and a large terminal."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.widgets.composer import Composer
from mads.kernel.events import Record
from mads.kernel.journal import JournalWriter

SESSION_ID = "20261125T120000.000Z-abcdef"
MADS = ["dewey", "fiedler", "horace", "rogers", "turing"]
MODULES = {
    "mads.dewey": "2f66220610d82e8a645208fa1e9aa12e0addd111149a14c4269369f909979328",
    "mads.fiedler": "b331bc31e49d45edb6734cb5639d00ace1a407255b155021b2d7277c2d15c3e0",
    "mads.horace": "e15c5465e30bbfff767035dd7ec40a8867567d8b15d06ec5e2c6e7b4b1f0a9d3",
    "mads.rogers": "848ff9c0b7d1f0e6a3c2d5e4f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
    "mads.turing": "7816bf26a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8",
}
START = 1795608000.0
CPU = {"dewey": [0.4, 1.2, 0.8], "fiedler": [0.0, 0.2, 0.1], "horace": [0.5, 6.0, 2.5], "rogers": [0.2, 3.0, 0.0],
       "turing": [0.0, 0.0, 0.0]}


def message(sender: str, content: str, recipients: list[str], tags: list[str] | None = None) -> dict[str, Any]:
    return {"message": {"id": f"m-{sender}-{len(content)}", "conversation": "main", "sender": sender,
                        "content": content, "mentions": recipients, "tags": tags or [], "kind": "deterministic",
                        "correlation_id": "c-1"}, "recipients": recipients}


def sample(i: int) -> dict[str, Any]:
    figures = {name: {"state": "running", "cpu_percent": CPU[name][i], "cpu_seconds": 0.01 * i,
                      "messages_in_per_s": 1.0 if name == "horace" and i == 1 else 0.0, "messages_out_per_s": 0.0,
                      "mailbox_depth": 2 if name == "dewey" and i == 2 else 0,
                      "tokens": 420 if name == "fiedler" else 0, "cost": 0.0021 if name == "fiedler" else 0.0,
                      "tool_calls": 0, "errors": 1 if name in ("rogers", "turing") and i == 2 else 0}
               for name in MADS}
    return {"interval_s": 1.0, "process": {"cpu_percent": 3.0, "rss": 48 * 1024 * 1024, "threads": 5},
            "mads": figures}


def recorded_session(path: Path) -> int:
    """Write a small session: sends to Horace and Dewey, an LLM call, a refused grant, a crash; returns the events."""
    events = [
        Record("session_start", payload={"session_id": SESSION_ID, "command": "mcp", "mads": MADS, "modules": MODULES}),
        *[Record("state", name, payload={"state": "running"}) for name in MADS],
        Record("message", "human", payload=message("human", "@Horace write_file path=notes.txt content=hello",
                                                  ["horace"])),
        Record("tool_call", "horace", payload={"tool": "horace_write_file", "caller": "horace",
                                              "arguments": {"path": "notes.txt", "content": "hello"}}),
        Record("tool_result", "horace", payload={"tool": "horace_write_file", "ok": True, "duration_ms": 1.8,
                                                "result": {"path": "notes.txt", "version": 1, "size": 5}}),
        Record("message", "horace", payload=message("horace", "@human #success version 1 of notes.txt", [],
                                                   ["success"])),
        Record("sample", payload=sample(0)),
        Record("message", "human", payload=message("human", '@Dewey search query="notes"', ["dewey"])),
        Record("tool_call", "dewey", payload={"tool": "dewey_search", "caller": "dewey",
                                             "arguments": {"query": "notes"}}),
        Record("tool_result", "dewey", payload={"tool": "dewey_search", "ok": True, "duration_ms": 3.2,
                                               "result": {"hits": 1}}),
        Record("llm_result", "fiedler", payload={"caller": "fiedler", "model": "offline", "input_tokens": 300,
                                                "output_tokens": 120, "ok": True, "text": "Two models agree."}),
        Record("sample", payload=sample(1)),
        Record("tool_call", "turing", payload={"tool": "turing_grant", "caller": "turing",
                                              "arguments": {"name": "db", "mad": "horace"}}),
        Record("tool_result", "turing", payload={"tool": "turing_grant", "ok": False, "duration_ms": 0.4,
                                                "error": "no secret named db"}),
        Record("crash", "rogers", payload={"handler": "on_observe", "error": "KeyError: 'conversation'",
                                          "traceback": "Traceback (most recent call last):\nKeyError: 'conversation'"}),
        Record("restart", "rogers", payload={"reason": "crash", "restarts": 1}),
        Record("sample", payload=sample(2)),
    ]
    writer = JournalWriter(path)
    for offset, event in enumerate(events):
        event.wall = START + offset
        writer.handle(event)
    writer.flush()
    writer.close()
    return len(events)


@pytest.fixture
def recorded_app(tmp_path: Path) -> tuple[MadApp, int]:
    """The workbench over the recorded session, with no child started."""
    journal = tmp_path / "sessions" / f"{SESSION_ID}.db"
    journal.parent.mkdir()
    count = recorded_session(journal)
    options = HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", journal=journal, environ={})
    return MadApp(options, start_host=False), count


def all_applied(count: int):
    """A run_before that waits until the app has drawn every recorded event (and stops the cursor blinking)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app: MadApp = pilot.app  # type: ignore[assignment]
        app.main.query_one(Composer).cursor_blink = False
        deadline = time.monotonic() + 10
        while not (app.timeline.last_seq >= count and len(app.main.deck.panes) == len(MADS)
                   and all(pane.is_mounted for pane in app.main.deck.panes.values())):
            assert time.monotonic() < deadline, "the recorded events were not applied"
            await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen_of_a_recorded_session(snap_compare: Any, recorded_app: tuple[MadApp, int],
                                           size: tuple[int, int]) -> None:
    """The status line `mad · 20261125T120000.000Z-abcdef · recorded · 21 events · cpu 3% · rss 48 MB`; the tab
    strip `1 dewey … 5 turing` with the visible panes in reverse and the `← → · alt+N zoom` hint; each pane
    titled with its name on its border, `N name ● running <8-hex version>` over `cpu x% · msg/s · box · tok`
    and a CPU trace of one bar per sample at its right end, drawn against at least 10% of a core (dewey's 1.2%
    and fiedler's 0.2% stay low, horace's 6% peak is a middle bar `▅▃`), its line count on the bottom border. At 80x24: dewey
    (cyan `← human: @Dewey search…`, yellow `⚙ dewey_search query=notes`, grey `✓ dewey_search (3.2 ms)`, box 2)
    beside fiedler (`✦ offline 420 tokens`). At 160x48 also horace (⚙/✓ horace_write_file, green
    `→ @human #success`) and rogers (red `✗1` in its title, red `✗ crashed in on_observe: KeyError…`, then
    `restarted (crash)`); turing is on the next page. The composer shows its placeholder; the footer lists the keys."""
    app, count = recorded_app
    assert snap_compare(app, terminal_size=size, run_before=all_applied(count))


def test_zoomed_pane_of_a_recorded_session(snap_compare: Any, recorded_app: tuple[MadApp, int]) -> None:
    """At 80x24 after alt+5: turing alone across the width (only `5 turing` in reverse in the tab strip), `✗1` in
    red in its title, the yellow `⚙ turing_grant name=db mad=horace` and the red
    `✗ turing_grant (0.4 ms) no secret named db`; the footer gains `⏎ Details` since its traffic has the focus."""
    app, count = recorded_app
    assert snap_compare(app, terminal_size=(80, 24), press=["alt+5"], run_before=all_applied(count))
