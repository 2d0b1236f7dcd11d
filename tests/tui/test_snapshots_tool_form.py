"""Snapshot tests of the tool form at a small and a large terminal, for a simple and a complex schema."""
from __future__ import annotations

from typing import Any

import pytest

from .tool_app import ToolApp

ORDER_WITH_ITEMS = {
    "count": 2, "address": {"street": "1 Main St"}, "items": [{"name": "apple", "qty": 2}, {"name": "pear"}],
    "contact": {"kind": "sms", "number": "555"},
}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_write_file_form(snap_compare: Any, size: tuple[int, int]) -> None:
    """The write_file form: `horace_write_file` in bold with its description under it, `path *` beside
    an empty one-line input (focused, placeholder `text`), `content *` beside an empty three-row text
    area (placeholder `text; several lines`), the Call button, and the footer keys ^s Call, esc Back
    (repeat, copy and save dimmed until a call was made)."""
    assert snap_compare(ToolApp(open_first="horace_write_file"), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_order_form_with_errors(snap_compare: Any, size: tuple[int, int]) -> None:
    """The complex form after ctrl+s on an empty form: `count *` with its description and the red
    line `required` under its input, `priority` showing the default `normal`, a bordered `address *`
    group whose `street *` says `required` and whose `city` is prefilled `Paris`, `items` with a
    `+ add Item` button, `contact *` set to `email` with its group (kind "email", `address *` required),
    and the red status `3 fields to fix; nothing was sent` (at 80x24 the lower fields scroll off)."""
    assert snap_compare(ToolApp(open_first="shop_place_order"), terminal_size=size, press=["ctrl+s"])


def test_order_form_filled(snap_compare: Any) -> None:
    """The complex form refilled from arguments at 160x48: count 2, two bordered items `Item 1`
    (apple, qty 2) and `Item 2` (pear, qty prefilled 1) each with a ✕ remove button, and `contact *`
    switched to `sms` with its `number *` 555; no error lines."""
    app = ToolApp(open_first="shop_place_order", initial=ORDER_WITH_ITEMS)
    assert snap_compare(app, terminal_size=(160, 48))
