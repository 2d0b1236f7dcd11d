"""Pictures of the resources screen over a fixed synthetic session, at 80x24 and 160x48."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from madtui.app import MadApp
from tests.helpers import until
from tests.tui.test_resources_screen import fake_memory_call, synthetic_app, write_journal


def resources_app(tmp_path: Path) -> tuple[MadApp, Any]:
    """The app over the synthetic journal, and a run_before that waits for every row and presses F2."""
    last = write_journal(tmp_path / "s.db")
    app = synthetic_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.timeline.last_seq == last, "the journal is read")
        await pilot.press("f2")
        await pilot.pause()

    return app, run_before


def test_resources_screen_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """Every MAD is a row with all nine columns unclipped (memory "–" before any reading), spinner on top
    under "CPU %▼" and selected; below, spinner's CPU graph between "max  99.2%" and "min  12.0%", the
    process line with RSS, the two-line hint (p profile, m memory), and the footer's keys."""
    app, run_before = resources_app(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_resources_screen_at_160x48(snap_compare: Any, tmp_path: Path) -> None:
    """The same screen with room to spare: the table over the upper part, a tall wide graph of spinner's
    CPU rising from 12% to 99% beside the profile panel."""
    app, run_before = resources_app(tmp_path)
    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)


def test_resources_screen_sorted_by_tokens_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """After `s` four times the rows are sorted by "tokens▼": fiedler (15,400) on top, spinner still
    selected further down, and the graph still spinner's."""
    app, prepare = resources_app(tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        await prepare(pilot)
        await pilot.press("s", "s", "s", "s")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


PROFILE = {"samples": 600, "seconds": 3, "mads": {
    "spinner": {"samples": 540, "share": 0.9, "top": [
        {"function": "spin (spinner.py:14)", "samples": 500},
        {"function": "a_function_with_a_name_far_too_long_for_the_panel (spinner.py:15)", "samples": 30},
        {"function": "<genexpr> (spinner.py:16)", "samples": 10}]},
    "kernel": {"samples": 60, "share": 0.1, "top": []}}}


def test_resources_screen_with_a_profile_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """After `p` the profile panel is titled "profile · spinner", says "spinner: 90% of 600 samples in 3 s"
    then "others: kernel 10%", and lists its three functions with their sample counts, the long name cut
    with an ellipsis."""
    app, prepare = resources_app(tmp_path)

    async def fake_call(name: str, arguments: dict[str, Any] | None = None, progress: Any = None) -> Any:
        return PROFILE

    app.call = fake_call  # type: ignore[method-assign]

    async def run_before(pilot: Pilot[Any]) -> None:
        await prepare(pilot)
        await pilot.press("p")
        await until(pilot, lambda: "samples" in app.screen.profile_panel.text, "the profile")  # type: ignore[attr-defined]

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_resources_screen_with_a_memory_reading_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """After `m` the panel is titled "memory · spinner" and says "spinner: 5.0 MB (83%) of 6.0 MB held,
    traced for 3 s", "others: kernel 1.0 MB, dewey 2.0 kB", then its two allocation sites with
    sizes and block counts; the memory column reads 5.0 MB for spinner, 2.0 kB for dewey, 0 B for the rest."""
    app, prepare = resources_app(tmp_path)
    app.call = fake_memory_call(tmp_path / "s.db", [])  # type: ignore[method-assign]

    async def run_before(pilot: Pilot[Any]) -> None:
        await prepare(pilot)
        await pilot.press("m")
        table = app.screen.table  # type: ignore[attr-defined]
        await until(pilot, lambda: "MB" in app.screen.profile_panel.text  # type: ignore[attr-defined]
                    and table.get_cell("dewey", "memory_bytes").text == "2.0 kB", "the reading")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
