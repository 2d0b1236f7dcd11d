"""Pilot tests of the tool form: filled from the keyboard, errors beside fields, calls, progress, repeat."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import ProgressBar, Static

from madtui.schema_form import ChoiceValue
from madtui.screens.tool_form import ToolFormScreen
from madtui.widgets.array_field import ArrayField
from madtui.widgets.choice_field import ChoiceField
from madtui.widgets.field import FieldWidget

from .tool_app import FakeCall, ToolApp

ORDER = {
    "count": 3, "priority": "high", "address": {"street": "1 Main St", "city": "Paris"},
    "items": [{"name": "apple", "qty": 2}, {"name": "pear", "qty": 1}],
    "contact": {"kind": "sms", "number": "555"},
}
WRITE = {"path": "notes/a.txt", "content": "hello"}


def form_screen(app: ToolApp) -> ToolFormScreen:
    """The tool form on top of the app."""
    screen = app.screen
    assert isinstance(screen, ToolFormScreen)
    return screen


def field(app: ToolApp, name: str) -> FieldWidget:
    """The first field editor for the argument `name`."""
    return next(f for f in app.screen.query(FieldWidget) if f.spec.name == name)


def status(app: ToolApp) -> str:
    """The one-line outcome under the form."""
    return str(app.screen.query_one("#status", Static).render())


def calls_posted(seen: list[Message]) -> list[ToolFormScreen.Called]:
    """Each Called message once (the hook sees it at every node it bubbles through)."""
    unique = {id(m): m for m in seen if isinstance(m, ToolFormScreen.Called)}
    return list(unique.values())


async def call_and_wait(app: ToolApp, pilot: Pilot[None]) -> None:
    """Press ctrl+s and wait for the call's worker to finish."""
    await pilot.press("ctrl+s")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_a_form_filled_from_the_keyboard_sends_exactly_the_typed_arguments() -> None:
    seen: list[Message] = []
    app = ToolApp(open_first="shop_place_order")
    async with app.run_test(size=(100, 50), message_hook=seen.append) as pilot:
        await pilot.pause()
        await pilot.press("0", "tab")                              # count: a wrong integer (must be >= 1)
        await pilot.press("enter", "down", "enter", "tab")         # priority: normal -> high
        await pilot.press(*"1 Main St", "tab", "tab")              # address.street; city keeps Paris
        await pilot.press("enter", *"apple", "tab", "2")           # + add Item: the new item is focused
        await pilot.press("ctrl+n", *"pear")                       # ctrl+n adds another item
        await pilot.press("tab", "tab", "tab", "tab")              # qty, remove, add, contact
        await pilot.press("enter", "down", "enter", "tab", *"555")  # contact: email -> sms; its number
        await pilot.press("ctrl+s")
        await pilot.pause()

        count = field(app, "count")
        assert count.error == "must be at least 1" and count.error_line.has_class("-invalid")
        assert app.call.calls == []
        assert app.focused is not None and count in app.focused.ancestors

        await pilot.press("3")                                     # focus came back with the text selected
        assert count.error is None
        await call_and_wait(app, pilot)

        assert app.call.calls == [("shop_place_order", ORDER)]
        assert status(app) == "✓ done"
        called = calls_posted(seen)
        assert [(m.tool, m.arguments, m.result) for m in called] == [("shop_place_order", ORDER, {"ok": True})]


async def test_file_content_takes_several_lines_and_tab_still_moves_on() -> None:
    app = ToolApp(open_first="horace_write_file")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(*"a.txt", "tab", *"one", "enter", *"two", "tab")
        await call_and_wait(app, pilot)
        assert app.call.calls == [("horace_write_file", {"path": "a.txt", "content": "one\ntwo"})]


async def test_an_array_item_is_removed_with_its_key_and_the_rest_renumbered() -> None:
    app = ToolApp(open_first="shop_place_order", initial={**ORDER, "items": [{"name": "a"}, {"name": "b"}]})
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        items = app.screen.query_one(ArrayField)
        items.item_fields()[0].first_focusable().focus()  # type: ignore[union-attr]
        await pilot.press("ctrl+delete")
        assert [f.raw()["name"] for f in items.item_fields()] == ["b"]
        assert items.item_fields()[0].label_text == "Item 1" and items.count == 1
        await call_and_wait(app, pilot)
        assert app.call.calls[0][1]["items"] == [{"name": "b", "qty": 1}]


async def test_repeat_refills_the_last_arguments_and_a_second_submit_sends_the_edit() -> None:
    app = ToolApp(open_first="shop_place_order", initial=ORDER)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        await call_and_wait(app, pilot)
        assert app.focused is app.screen.query_one("#result-scroll")  # the result, to scroll or copy
        count = field(app, "count")
        await count.set_raw("39")                                  # an edit that is never sent
        await pilot.press("ctrl+r")                                # back to the last call's arguments
        await pilot.pause()
        assert count.raw() == "3"
        await pilot.press("5")                                     # count selected on refill: replaced
        await call_and_wait(app, pilot)
        assert app.call.calls == [("shop_place_order", ORDER), ("shop_place_order", {**ORDER, "count": 5})]


async def test_a_long_call_shows_its_progress_and_escape_cancels_it() -> None:
    seen: list[Message] = []
    call = FakeCall(block=True)
    app = ToolApp(call, open_first="horace_write_file", initial=WRITE)
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await asyncio.wait_for(call.started.wait(), timeout=10)
        await pilot.pause()
        screen = form_screen(app)
        assert screen.running and screen.query_one("#call-progress").display
        bar = screen.query_one("#progress", ProgressBar)
        assert (bar.progress, bar.total) == (1, 4)
        assert "copying  1/4" in str(screen.query_one("#progress-message", Static).render())

        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen and not screen.running and not screen.query_one("#call-progress").display
        assert status(app) == "cancelled"
        called = calls_posted(seen)
        assert [m.result for m in called] == [{"is_error": True, "text": "cancelled"}]


async def test_an_exception_or_an_error_result_shows_as_one_error_line() -> None:
    for result, line in [(RuntimeError("disk full\ntraceback..."), "✗ disk full"),
                         ({"is_error": True, "text": "path escapes the root"}, "✗ path escapes the root")]:
        app = ToolApp(FakeCall(result), open_first="horace_write_file", initial=WRITE)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await call_and_wait(app, pilot)
            assert status(app) == line
            assert app.screen.query_one("#status").has_class("-error")


async def test_the_result_is_copied_and_saved_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result: dict[str, Any] = {"path": "notes/a.txt", "version": 2, "size": 5}
    app = ToolApp(FakeCall(result), open_first="horace_write_file", initial=WRITE)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await call_and_wait(app, pilot)
        await pilot.press("ctrl+y")
        assert json.loads(app.clipboard) == result
        await pilot.press("ctrl+o", *"out.json", "enter")                 # a path relative to the cwd
        assert json.loads((tmp_path / "out.json").read_text()) == result
        assert status(app) == f"saved to {tmp_path / 'out.json'}"
        assert not app.screen.has_class("-saving")


async def test_escape_leaves_an_idle_form() -> None:
    app = ToolApp(open_first="horace_write_file")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ToolFormScreen)


async def test_switching_variants_keeps_what_each_one_held() -> None:
    app = ToolApp(open_first="shop_place_order", initial={**ORDER, "contact": {"kind": "email", "address": "a@b"}})
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        contact = field(app, "contact")
        assert isinstance(contact, ChoiceField)
        contact.select.value = 1
        await pilot.pause()
        assert contact.raw() == ChoiceValue(1, {"kind": "sms", "number": ""})
        contact.select.value = 0
        await pilot.pause()
        assert contact.raw() == ChoiceValue(0, {"kind": "email", "address": "a@b"})
