"""F9, the Regen screen: candidates with their gate status, the behaviour diff side by side, accept, reject, new."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Static

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.regen import RegenScreen
from mads.kernel.journal.reader import read_events
from tests.helpers import wait_for
from tests.tui.conftest import CHANGED, COUNTER, KEY, REWRITE

def app_over(root: Path, *, start_host: bool = False, environ: dict[str, str] | None = None) -> MadApp:
    options = HostOptions(home=root / "home", sessions=root / "sessions", mad_path=[root / "mads"],
                          environ={"MAD_MASTER_KEY": KEY, **(environ or {})}, provider="offline")
    return MadApp(options, start_host=start_host)


def text_of(screen: RegenScreen, name: str) -> str:
    return str(screen.query_one(f"#regen-{name}", Static).render())


async def open_regen(pilot: Any) -> RegenScreen:
    await pilot.press("f9")
    screen = pilot.app.screen
    assert isinstance(screen, RegenScreen)
    await wait_for(lambda: screen.table.row_count == 3, what="three candidates listed")
    return screen


def select(screen: RegenScreen, key: str) -> None:
    screen.table.move_cursor(row=screen.table.get_row_index(key), animate=False)


async def test_f9_lists_candidates_with_their_gate_and_shows_the_divergence_side_by_side(root: Path) -> None:
    app = app_over(root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_regen(pilot)
        gates = {str(screen.table.get_row(key)[0]): str(screen.table.get_row(key)[1]) for key in screen.rows}
        assert gates == {"counter#1": "✓ same", "counter#2": "≠ differs", "counter#3": "✗ compile"}
        select(screen, "counter#2")
        await pilot.pause()
        where = text_of(screen, "where")
        assert "divergence 1 of 1" in where and "counter at its event" in where
        assert '"added": 1' in text_of(screen, "recorded") and '"added": 10' in text_of(screen, "candidate")
        assert "interface: same tools and schemas" in text_of(screen, "gate")
        await pilot.press("j")
        assert "divergence 1 of 1" in text_of(screen, "where")  # one divergence: j wraps to it
        select(screen, "counter#3")
        await pilot.pause()
        assert "static gate FAILED at compile" in text_of(screen, "gate")
        await pilot.press("a")  # a candidate that does not compile is never written
        assert (root / "mads" / "counter.py").read_text() == COUNTER
        await pilot.press("escape")
        assert not isinstance(app.screen, RegenScreen)


async def test_r_rejects_and_nothing_changes(root: Path) -> None:
    app = app_over(root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_regen(pilot)
        select(screen, "counter#2")
        await pilot.press("r")
        await wait_for(lambda: str(screen.table.get_row("counter#2")[2]) == "rejected", what="marked rejected")
        report = json.loads((root / "home" / "regen" / "counter" / "2" / "report.json").read_text())
        assert report["review"] == "rejected"
        assert (root / "mads" / "counter.py").read_text() == COUNTER
        assert not (root / "home" / "regen" / "counter" / "history").exists()


async def test_a_accepts_writes_the_module_and_the_running_ecosystem_reloads_it(root: Path) -> None:
    app = app_over(root, start_host=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.host.state == "running", timeout=60, what="the ecosystem running")
        screen = await open_regen(pilot)
        select(screen, "counter#2")
        await pilot.press("a")
        await wait_for(lambda: (root / "mads" / "counter.py").read_text() == CHANGED, what="the module written")
        assert str(screen.table.get_row("counter#2")[2]) == "accepted"
        await wait_for(lambda: any(e["mad"] == "counter" and e["payload"]["action"] == "reloaded"
                                   for e in read_events(app.journal, kind=["reload"])),
                       timeout=30, what="the running ecosystem reloaded counter")
        assert "counter#2 written to counter.py" in " ".join(str(n.message) for n in app._notifications)


async def test_n_regenerates_with_the_model_and_shows_its_progress(root: Path) -> None:
    script = root / "script.jsonl"
    script.write_text(json.dumps({"mad": "regen", "text": f"```python\n{REWRITE}```"}) + "\n")
    app = app_over(root, environ={"MAD_SCRIPT": str(script)})
    app.host_options.provider = "scripted"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_regen(pilot)
        await pilot.press("n")
        await pilot.press(*"rename a local")
        await pilot.press("enter")
        await wait_for(lambda: screen.table.row_count == 4, timeout=120, what="the new candidate listed")
        await wait_for(lambda: not screen.running, timeout=120, what="the regeneration finished")
        assert str(screen.table.get_row("counter#4")[1]) == "✓ same"
        seen = screen.progress_lines
        assert seen[0].startswith("generating (attempt 1 of 3)")
        assert "static gate…" in seen and any(s.startswith("re-running 1 of 1") for s in seen)
        assert seen[-1] == "counter#4: same" == text_of(screen, "progress")
