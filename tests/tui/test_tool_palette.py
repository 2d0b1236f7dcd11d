"""Tests of the tool palette (fuzzy search, Enter opens, Escape cancels) and the ctrl+p tool commands."""
from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import OptionList

from madtui.screens.tool_form import ToolFormScreen
from madtui.screens.tool_palette import ToolPalette, rank_tools

from .schemas import TOOLS
from .tool_app import ToolApp


def best(query: str) -> str:
    """The name of the best match for `query`."""
    return rank_tools(query, TOOLS)[0][1]["name"]


def test_write_file_is_the_best_match_for_an_abbreviation_or_its_words() -> None:
    assert best("hwf") == "horace_write_file"
    assert best("write file") == "horace_write_file"
    assert best("write_file") == "horace_write_file"  # as the name is written
    assert best("horace_write_file") == "horace_write_file"
    assert best("full text") == "dewey_search"  # found by its description


def test_an_empty_query_lists_every_tool_by_name_and_nonsense_lists_none() -> None:
    assert [tool["name"] for _, tool, _ in rank_tools("", TOOLS)] == sorted(t["name"] for t in TOOLS)
    assert rank_tools("zzqx", TOOLS) == []
    assert len(rank_tools("_", TOOLS)) == len(rank_tools(" ", TOOLS)) == len(TOOLS)


async def test_typing_hwf_and_enter_opens_the_write_file_form() -> None:
    for query in ("hwf", "write file"):
        app = ToolApp()
        async with app.run_test() as pilot:
            await pilot.press("ctrl+t")
            assert isinstance(app.screen, ToolPalette)
            await pilot.press(*query, "enter")
            await pilot.pause()
            assert app.opened == ["horace_write_file"]
            assert isinstance(app.screen, ToolFormScreen) and app.screen.tool_name == "horace_write_file"


async def test_arrow_keys_move_the_pick_while_typing() -> None:
    app = ToolApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+t", *"horace")
        options = app.screen.query_one(OptionList)
        names = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert set(names) == {"horace_read_file", "horace_write_file"}
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.opened == [names[1]]


async def test_escape_closes_the_palette_without_opening_anything() -> None:
    app = ToolApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+t", *"hwf", "escape")
        await pilot.pause()
        assert app.opened == [] and not isinstance(app.screen, ToolPalette)


async def test_the_command_palette_offers_every_tool_and_opens_the_chosen_one() -> None:
    app = ToolApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+p")
        assert CommandPalette.is_open(app)
        await pilot.press(*"call tool write file")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.opened == ["horace_write_file"]
        assert isinstance(app.screen, ToolFormScreen)
