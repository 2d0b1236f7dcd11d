"""The resources screen: rows sorted by any column, the selected MAD's CPU graph, profiles; and a real spinning MAD on top."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from mads.kernel.events import Record
from mads.kernel.journal import JournalWriter
from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.resources import ResourcesScreen
from madtui.widgets.resource_table import ResourceTable
from tests.helpers import until, wait_until

ROOT = Path(__file__).resolve().parents[2]
SESSION_ID = "20250101-120000-resources"
MADS = ["dewey", "fiedler", "horace", "rogers", "spinner", "turing"]
SPINNER_CPU = [12.0, 48.5, 97.0, 99.2, 98.4]
"""Spinner's CPU % in the synthetic samples, oldest first."""
MiB = 1024 * 1024


def figures(name: str, step: int) -> dict[str, Any]:
    """One MAD's figures in sample `step`, as resources.Sampler.sample() emits them; spinner spins, fiedler spends."""
    spinning = name == "spinner"
    return {
        "state": "running",
        "cpu_percent": SPINNER_CPU[step] if spinning else round(0.5 + MADS.index(name) * 0.3, 2),
        "cpu_seconds": round(sum(SPINNER_CPU[: step + 1]) / 100, 6) if spinning else 0.01 * (step + 1),
        "wall_seconds": 0.0,
        "messages_in_per_s": 4.0 if spinning else 0.0, "messages_out_per_s": 4.0 if spinning else 0.0,
        "messages_in": 4 * step, "messages_out": 4 * step,
        "tool_calls": 4 * step if spinning else 0,
        "mailbox_depth": 3 if spinning else 0, "llm_calls": 0,
        "tokens": 15_400 if name == "fiedler" else 0,
        "cost": 0.0231 if name == "fiedler" else 0.0,
        "errors": 2 if name == "horace" else 0, "crashes": 0,
    }


def write_journal(path: Path, steps: int = len(SPINNER_CPU)) -> int:
    """A session_start and `steps` samples, written as the child would; returns the last seq."""
    writer = JournalWriter(path)
    try:
        wall = 1_735_732_800.0
        writer.handle(Record("session_start", payload={"session_id": SESSION_ID, "mads": MADS, "modules": {}},
                            wall=wall, mono=0.0))
        for step in range(steps):
            process = {"cpu_percent": 101.5 + step, "rss": 96 * MiB + step * MiB, "threads": 11}
            writer.handle(Record("sample", payload={"interval_s": 1.0, "process": process,
                                                   "mads": {name: figures(name, step) for name in MADS}},
                                wall=wall + step + 1, mono=step + 1.0))
        writer.flush()
    finally:
        writer.close()
    return 1 + steps


def synthetic_app(tmp_path: Path) -> MadApp:
    """The app over a journal nobody is writing to (no child)."""
    return MadApp(HostOptions(journal=tmp_path / "s.db", home=tmp_path / "home", sessions=tmp_path / "sessions"),
                  start_host=False)


def resources(app: MadApp) -> ResourcesScreen:
    assert isinstance(app.screen, ResourcesScreen), app.screen
    return app.screen


async def test_resources_screen_sorts_mads_and_graphs_the_selected_one(tmp_path: Path) -> None:
    app = synthetic_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        last = write_journal(tmp_path / "s.db")
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        await pilot.press("f2")
        screen = resources(app)
        table = screen.query_one(ResourceTable)
        await until(pilot, lambda: table.row_count == len(MADS), "every MAD has a row")

        assert table.names()[0] == "spinner"
        assert table.selected_name == "spinner"
        assert screen.graph.history == SPINNER_CPU
        assert screen.graph.border_title == "spinner · CPU 98.4%"
        assert "max  99.2%" in str(screen.graph.query_one("#graph-max").content)
        assert "min  12.0%" in str(screen.graph.query_one("#graph-min").content)
        assert "RSS 100.0 MB" in str(screen.query_one("#resources-process").content)

        table.sort_by("tokens")
        await pilot.pause()
        assert table.names()[0] == "fiedler"
        assert table.selected_name == "spinner", "the selected MAD stays selected when the rows move"
        await pilot.press("S")
        assert table.names()[-1] == "fiedler"
        await pilot.press("s")
        assert table.sort_column == "cost" and table.sort_descending
        assert table.names()[0] == "fiedler"

        await pilot.click(ResourceTable, offset=(4, 0))
        assert table.sort_column == "name"
        assert table.names() == sorted(MADS)

        await pilot.press("ctrl+home")
        assert table.selected_name == "dewey"
        await pilot.pause()
        assert screen.graph.border_title.startswith("dewey")
        assert screen.graph.history == [0.5] * len(SPINNER_CPU)

        await pilot.press("escape")
        assert not isinstance(app.screen, ResourcesScreen)


async def test_new_samples_refresh_the_rows_and_keep_the_selection(tmp_path: Path) -> None:
    app = synthetic_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        write_journal(tmp_path / "s.db", steps=2)
        await until(pilot, lambda: app.timeline.last_seq == 3, "the first samples are read")
        await pilot.press("f2")
        table = resources(app).query_one(ResourceTable)
        await pilot.press("down")
        assert table.selected_name == "turing"
        writer = JournalWriter(tmp_path / "s.db")
        try:
            hot = {name: figures(name, 0) for name in MADS} | {"turing": figures("spinner", 4)}
            writer.handle(Record("sample", payload={"process": {}, "mads": hot}))
            writer.flush()
        finally:
            writer.close()
        await until(pilot, lambda: table.names()[0] == "turing", "turing moves to the top")
        assert table.selected_name == "turing"
        assert resources(app).graph.border_title == "turing · CPU 98.4%"


async def test_p_profiles_the_selected_mad_and_shows_its_top_functions(tmp_path: Path) -> None:
    app = synthetic_app(tmp_path)
    calls: list[tuple[str, dict[str, Any]]] = []

    async def fake_call(name: str, arguments: dict[str, Any] | None = None, progress: Any = None) -> Any:
        calls.append((name, arguments or {}))
        await progress(1.0, 3.0, "sampling 1/3 s")
        return {"samples": 600, "seconds": 3, "mads": {
            "spinner": {"samples": 540, "share": 0.9, "top": [
                {"function": "spin (spinner.py:14)", "samples": 500},
                {"function": "<genexpr> (spinner.py:15)", "samples": 40}]},
            "kernel": {"samples": 60, "share": 0.1, "top": []}}}

    app.call = fake_call  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        last = write_journal(tmp_path / "s.db")
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        await pilot.press("f2")
        screen = resources(app)
        await pilot.press("p")
        await until(pilot, lambda: not screen.profile_panel.running, "the profile is shown")
        assert calls == [("mad_profile", {"seconds": 3})]
        text = screen.profile_panel.text
        assert text.splitlines()[0] == "spinner: 90% of 600 samples in 3 s"
        assert text.splitlines()[1] == "others: kernel 10%"
        assert "500  spin (spinner.py:14)" in text
        assert "40  <genexpr> (spinner.py:15)" in text
        assert not screen.profile_panel.running


READING = {"bytes": 6 * MiB + 2048, "seconds": 3, "since": "window", "mads": {
    "spinner": {"bytes": 5 * MiB, "blocks": 5120, "share": 0.8333, "top": [
        {"where": "spinner.py:21", "bytes": 5 * MiB - 4096, "blocks": 5119},
        {"where": "spinner.py:9", "bytes": 4096, "blocks": 1}]},
    "kernel": {"bytes": MiB, "blocks": 40, "share": 0.1663, "top": []},
    "dewey": {"bytes": 2048, "blocks": 3, "share": 0.0003, "top": []}}}
"""A mad_memory reading as the child returns it and records it."""


def fake_memory_call(journal: Path, calls: list[tuple[str, dict[str, Any]]]) -> Callable[..., Any]:
    """A stand-in for app.call that answers READING and records it in the journal, as the child does."""

    async def fake_call(name: str, arguments: dict[str, Any] | None = None, progress: Any = None) -> Any:
        calls.append((name, arguments or {}))
        if progress is not None:
            await progress(1.0, 3.0, "tracing allocations 1/3 s")
        writer = JournalWriter(journal)
        try:
            writer.handle(Record("memory", payload=READING))
        finally:
            writer.close()
        return READING

    return fake_call


async def test_m_reads_memory_and_the_table_shows_what_each_mad_holds(tmp_path: Path) -> None:
    app = synthetic_app(tmp_path)
    calls: list[tuple[str, dict[str, Any]]] = []
    app.call = fake_memory_call(tmp_path / "s.db", calls)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        last = write_journal(tmp_path / "s.db")
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        await pilot.press("f2")
        screen = resources(app)
        table = screen.table
        assert table.get_cell("spinner", "memory_bytes").text == "–"  # no reading yet
        await pilot.press("m")
        await until(pilot, lambda: not screen.profile_panel.running, "the reading is shown")
        assert calls == [("mad_memory", {"seconds": 3})]
        lines = screen.profile_panel.text.splitlines()
        assert lines[0] == "spinner: 5.0 MB (83%) of 6.0 MB held, traced for 3 s"
        assert lines[1] == "others: kernel 1.0 MB, dewey 2.0 kB"
        assert lines[2].split() == ["5.0", "MB", "5119", "blocks", "spinner.py:21"]
        assert screen.profile_panel.border_title == "memory · spinner"
        await until(pilot, lambda: table.get_cell("spinner", "memory_bytes").text == "5.0 MB", "the memory column")
        assert table.get_cell("dewey", "memory_bytes").text == "2.0 kB"
        assert table.get_cell("horace", "memory_bytes").text == "0 B"  # held nothing of what was traced
        table.sort_by("memory_bytes")
        await pilot.pause()
        assert table.names()[:2] == ["spinner", "dewey"]
        await pilot.press("down")  # the same reading, as dewey saw it
        await until(pilot, lambda: screen.profile_panel.border_title == "memory · dewey", "dewey's part")
        assert screen.profile_panel.text.splitlines()[0] == "dewey: 2.0 kB (0%) of 6.0 MB held, traced for 3 s"


async def test_a_failed_profile_is_one_line(tmp_path: Path) -> None:
    app = synthetic_app(tmp_path)
    notices: list[str] = []
    app.notify = lambda message, **kwargs: notices.append(message)  # type: ignore[method-assign,assignment,misc]
    async with app.run_test(size=(100, 30)) as pilot:
        last = write_journal(tmp_path / "s.db")
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        await pilot.press("f2", "p")
        await until(pilot, lambda: bool(notices), "a notice")
        assert notices == ["profile failed: the ecosystem is stopped"]
        assert resources(app).profile_panel.text == "profile failed: the ecosystem is stopped"


SPINNER = '''\
import asyncio
import time

from mads.kernel import MAD, tool


class Spinner(MAD):
    """Burns CPU on request."""

    @tool
    async def spin(self, ms: int) -> int:
        """Burn ms of CPU in 20 ms bursts, yielding between them."""
        end = time.thread_time() + ms / 1000
        while time.thread_time() < end:
            burst = time.thread_time() + 0.02
            while time.thread_time() < burst:
                pass
            await asyncio.sleep(0)
        return ms
'''


def pane_cpu(app: MadApp, name: str) -> float:
    """The CPU figure a MAD's pane header shows."""
    pane = app.main.deck.panes[name]
    text = str(pane.query_one("#figures").content)
    match = re.search(r"cpu\s+([\d.]+)%", text)
    assert match, text
    return float(match.group(1))


async def test_a_mad_spinning_the_cpu_is_the_top_row_within_3_s(tmp_path: Path) -> None:
    """A MAD spinning the CPU is the top row of the resources screen and its pane's CPU figure is the highest within 3 s."""
    mads = tmp_path / "mads"
    mads.mkdir()
    (mads / "spinner.py").write_text(SPINNER)
    environ = {**os.environ, "MAD_MASTER_KEY": "a" * 64, "PYTHONPATH": str(ROOT)}
    app = MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", mad_path=[mads],
                             environ=environ))
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.host.state == "running", "the ecosystem runs", timeout=30)
        child = app.host.pid
        assert child is not None
        await until(pilot, lambda: "spinner" in app.timeline.mads and app.timeline.process,
                    "the first sample", timeout=10)
        await pilot.press("f2")
        screen = resources(app)
        table = screen.query_one(ResourceTable)

        async def load() -> None:
            while True:
                await app.call("mad_send", {"content": "@Spinner spin ms=200"})

        def spinner_on_top() -> bool:
            mads_now = app.timeline.mads
            others = [v.cpu_percent for n, v in mads_now.items() if n != "spinner"]
            return (table.names()[:1] == ["spinner"] and mads_now["spinner"].cpu_percent > max(others, default=0)
                    and mads_now["spinner"].cpu_percent >= 20
                    and pane_cpu(app, "spinner") == max(pane_cpu(app, n) for n in app.main.deck.panes))

        started = time.monotonic()
        loader = asyncio.ensure_future(load())
        try:
            await until(pilot, spinner_on_top, "spinner on top", timeout=3.0)
            took = time.monotonic() - started
        finally:
            loader.cancel()
            with contextlib.suppress(BaseException):
                await loader
        assert took <= 3.0
        await pilot.press("ctrl+home")
        assert table.selected_name == "spinner"
        assert screen.graph.border_title.startswith("spinner · CPU ")
        await pilot.press("ctrl+q")
    wait_until(lambda: not alive(child), timeout=20, what="the child exits")
    assert not [p.pid for p in psutil.Process().children(recursive=True) if alive(p.pid)]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie awaiting its parent's wait() does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
