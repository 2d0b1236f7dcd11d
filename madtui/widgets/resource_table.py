"""Every MAD as a row of figures, sortable by any column; the selected row stays selected as rows move."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.reactive import reactive
from textual.widgets import DataTable

from ..timeline import MadView
from .sizes import size_text
from .sparkline_header import STATE_MARK


@dataclass(frozen=True)
class Column:
    """One column: its key (a MadView attribute), label, how a value reads, and its first sort direction."""

    key: str
    label: str
    text: Callable[[Any], str]
    descending: bool = True
    """Numbers sort biggest first, so what costs most is on top."""


COLUMNS: tuple[Column, ...] = (
    Column("name", "MAD", str, descending=False),
    Column("cpu_percent", "CPU %", lambda v: f"{v:.1f}"),
    Column("cpu_seconds", "CPU s", lambda v: f"{v:.2f}"),
    Column("messages_per_s", "msg/s", lambda v: f"{v:.1f}"),
    Column("mailbox_depth", "box", str),  # (as in the pane headers: "box N")
    Column("tokens", "tokens", lambda v: f"{v:,}"),
    Column("cost", "cost $", lambda v: f"{v:.4f}"),
    Column("errors", "errors", str),
    Column("memory_bytes", "memory", lambda v: "–" if v is None else size_text(v)),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)
ARROWS = {True: "▼", False: "▲"}


@dataclass(frozen=True, order=True)
class Figure:
    """A cell that sorts by its value and shows its text (so 100.0 sorts above 9.5)."""

    value: Any
    text: str = field(compare=False)
    style: str = field(default="", compare=False)
    justify: str = field(default="right", compare=False)

    def __rich__(self) -> Text:
        return Text(self.text, style=self.style, justify=self.justify, no_wrap=True, end="")  # type: ignore[arg-type]


def cells(view: MadView) -> list[Figure]:
    """The row of one MAD, in column order."""
    own = " ⧉" if view.placement == "isolated" else ""  # its own process: CPU and memory are that process's
    row = [Figure(view.name, f"{STATE_MARK.get(view.state, '?')} {view.name}{own}",
                  "bold red" if view.state == "failed" else "", "left")]
    for column in COLUMNS[1:]:
        value = getattr(view, column.key)
        style = "red" if column.key == "errors" and value else ""
        row.append(Figure(-1 if value is None else value, column.text(value), style))  # no reading sorts last
    return row


class ResourceTable(DataTable[Figure]):
    """One row per MAD; `s` sorts by the next column, `S` reverses, clicking a header sorts by it."""

    BINDINGS = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S,shift+s", "reverse_sort", "Reverse"),
    ]

    sort_column: reactive[str] = reactive("cpu_percent")
    """The key of the column the rows are sorted by."""
    sort_descending: reactive[bool] = reactive(True)
    """Whether the biggest value is on top."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for column in COLUMNS:
            if column.key not in self.columns:
                self.add_column(self._label(column), key=column.key)

    @property
    def selected_name(self) -> str | None:
        """The MAD under the cursor, read from the table itself (never from a message in flight)."""
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return row_key.value

    def names(self) -> list[str]:
        """The MADs in the order shown, top first."""
        return [row.key.value for row in self.ordered_rows if row.key.value is not None]

    def show(self, views: Sequence[MadView]) -> None:
        """Show the views' latest figures, sorted, with the cursor still on the same MAD."""
        self._add_columns()
        selected = self.selected_name
        for view in views:
            row = cells(view)
            if view.name not in self.rows:
                self.add_row(*row, key=view.name)
                continue
            for column, cell in zip(COLUMNS, row):
                self.update_cell(view.name, column.key, cell, update_width=True)
        self._sort(selected)

    def _sort(self, selected: str | None) -> None:
        self.sort(self.sort_column, reverse=self.sort_descending)
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    def _label(self, column: Column) -> Text:
        arrow = ARROWS[self.sort_descending] if column.key == self.sort_column else " "
        return Text(f"{column.label}{arrow}", justify="left" if column.key == "name" else "right")

    def _relabel(self) -> None:
        for column in COLUMNS:
            if column.key in self.columns:
                self.columns[column.key].label = self._label(column)  # type: ignore[index]
        self._sort(self.selected_name)

    def watch_sort_column(self) -> None:
        self._relabel()

    def watch_sort_descending(self) -> None:
        self._relabel()

    def sort_by(self, key: str) -> None:
        """Sort by this column, in its own first direction; the current column again reverses it."""
        if key == self.sort_column:
            self.sort_descending = not self.sort_descending
            return
        column = COLUMNS[COLUMN_KEYS.index(key)]
        self.set_reactive(ResourceTable.sort_descending, column.descending)
        self.sort_column = key

    def action_cycle_sort(self) -> None:
        following = COLUMN_KEYS[(COLUMN_KEYS.index(self.sort_column) + 1) % len(COLUMN_KEYS)]
        self.sort_by(following)

    def action_reverse_sort(self) -> None:
        self.sort_descending = not self.sort_descending

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value in COLUMN_KEYS:
            self.sort_by(event.column_key.value)
