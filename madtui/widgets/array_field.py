"""ArrayField: a list of values or objects, with add and remove by button or key."""
from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button

from madtui.schema_form import FieldSpec, Path
from madtui.schema_form.model import initial_raw

from .field import FieldWidget, build_field, child_errors


class ArrayField(FieldWidget):
    """The items of an array, each with a remove button, and an add button under them."""

    BINDINGS = [
        Binding("ctrl+n", "add_item", "Add item"),
        Binding("ctrl+delete", "remove_item", "Remove item"),
    ]

    DEFAULT_CSS = """
    ArrayField .array-items { height: auto; }
    ArrayField .array-item { height: auto; }
    ArrayField .array-item > FieldWidget { width: 1fr; }
    ArrayField .array-remove { width: auto; min-width: 3; margin-left: 1; }
    ArrayField .array-add { width: auto; }
    """

    count: reactive[int] = reactive(0)
    """How many items the array holds."""

    def __init__(self, spec: FieldSpec, raw: Any, *, label: str | None = None) -> None:
        super().__init__(spec, raw, label=label)
        assert spec.item is not None
        self.item_spec = spec.item
        self.items = Vertical(classes="array-items")
        self.add_button = Button(f"+ add {self._noun()}", classes="array-add", compact=True)
        self.set_reactive(ArrayField.count, len(raw) if isinstance(raw, list) else 0)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            if self.label_text:
                yield self.label_widget
            with Vertical(classes="field-body"):
                with self.items:
                    for index, raw in enumerate(self.initial_raw if isinstance(self.initial_raw, list) else []):
                        yield self._row(raw, index)
                yield self.add_button
                yield from self.compose_description()
                yield self.error_line

    def _noun(self) -> str:
        """What one item is called: the item's title, or `item`."""
        return self.item_spec.title or "item"

    def _item_label(self, index: int) -> str:
        """The label of the item at `index` (counted from 1 for people)."""
        return f"{self._noun()} {index + 1}"

    def _row(self, raw: Any, index: int) -> Horizontal:
        """One item: its editor and a remove button."""
        editor = build_field(self.item_spec, raw, label=self._item_label(index))
        remove = Button("✕", classes="array-remove", compact=True, tooltip="remove this item")
        return Horizontal(editor, remove, classes="array-item")

    def rows(self) -> list[Widget]:
        """The item rows, in order."""
        return list(self.items.children)

    def item_fields(self) -> list[FieldWidget]:
        """The item editors, in order."""
        return [row.children[0] for row in self.rows() if isinstance(row.children[0], FieldWidget)]

    def raw(self) -> list[Any]:
        return [field.raw() for field in self.item_fields()]

    async def set_raw(self, raw: Any) -> None:
        values = raw if isinstance(raw, list) else []
        await self.items.remove_children()
        await self.items.mount_all([self._row(value, index) for index, value in enumerate(values)])
        self.count = len(values)

    def show_errors(self, errors: dict[Path, str]) -> None:
        self.show_error(errors.get(()))
        for index, field in enumerate(self.item_fields()):
            field.show_errors(child_errors(errors, index))

    async def action_add_item(self) -> None:
        """Add an empty item (defaults prefilled) at the end and focus it."""
        row = self._row(initial_raw(self.item_spec), len(self.rows()))
        await self.items.mount(row)
        self.count = len(self.rows())
        if self.error is not None:
            self.show_error(None)
        target = row.children[0]
        first = target.first_focusable() if isinstance(target, FieldWidget) else None
        (first or row.children[-1]).focus()

    async def action_remove_item(self) -> None:
        """Remove the item that holds the focus."""
        focused = self.screen.focused
        row = next((node for node in (focused.ancestors_with_self if focused else [])
                    if node.parent is self.items), None)
        if isinstance(row, Widget):
            await self._remove(row)

    async def _remove(self, row: Widget) -> None:
        """Remove one item row, renumber the rest and keep the focus nearby."""
        rows = self.rows()
        index = rows.index(row)
        await row.remove()
        self.count = len(rows) - 1
        for position, field in enumerate(self.item_fields()):
            field.set_label(self._item_label(position))
        remaining = self.rows()
        if remaining:
            target = remaining[min(index, len(remaining) - 1)].children[0]
            first = target.first_focusable() if isinstance(target, FieldWidget) else None
            if first is not None:
                first.focus()
                return
        self.add_button.focus()

    @on(Button.Pressed, ".array-add")
    async def _add_pressed(self, event: Button.Pressed) -> None:
        if event.button is self.add_button:
            event.stop()
            await self.action_add_item()

    @on(Button.Pressed, ".array-remove")
    async def _remove_pressed(self, event: Button.Pressed) -> None:
        row = event.button.parent
        if row is not None and row.parent is self.items:
            event.stop()
            await self._remove(row)  # type: ignore[arg-type]

