"""From a CPU spike to its cause: the messages a MAD handled in one second, costliest first; Enter opens the replay."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..timeline import MadView


def second_of(view: MadView, back: int | None) -> tuple[int, float, float] | None:
    """The sample `back` seconds before the last (None: the one with the most CPU): its index, wall, CPU %."""
    walls, history = list(view.cpu_walls), list(view.cpu_history)[-len(view.cpu_walls):] if view.cpu_walls else []
    if not walls:
        return None
    if back is None:
        index = max(range(len(history)), key=lambda i: (history[i], i))
    else:
        index = max(0, len(walls) - 1 - back)
    return index, walls[index], history[index]


def handled_in(view: MadView, index: int) -> list[tuple[float, int, float, str]]:
    """What the MAD handled during that sample's interval (after the sample before it, up to it), costliest first."""
    walls = list(view.cpu_walls)
    end = walls[index]
    start = walls[index - 1] if index > 0 else end - 1.0
    found = [h for h in view.handled if start < h[0] <= end]
    return sorted(found, key=lambda h: (-h[2], h[1]))


class HandledScreen(Screen[None]):
    """The messages of one second; Enter on one opens the replay at it."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("enter", "open", "Open in replay")]

    def __init__(self, mad: str, wall: float, cpu: float, rows: list[tuple[float, int, float, str]]) -> None:
        super().__init__()
        self.mad = mad
        self.wall = wall
        self.cpu = cpu
        self.rows = rows

    def compose(self) -> ComposeResult:
        when = datetime.fromtimestamp(self.wall).strftime("%H:%M:%S")
        count = len(self.rows)
        yield Static(Text(f"{self.mad} · the second up to {when} · {self.cpu:.0f}% CPU · {count} "
                          f"message{'s' * (count != 1)} handled, costliest first", style="bold"), id="handled-title")
        yield DataTable(id="handled-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("cpu ms", "event", "first line")
        for wall, seq, cpu_ms, head in self.rows:
            table.add_row(Text(f"{cpu_ms:.1f}", justify="right"), Text(f"#{seq}", justify="right"), head,
                          key=str(seq))
        table.focus()

    @property
    def selected_seq(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        seq = self.selected_seq
        if seq is None:
            return
        opener: Any = getattr(self.app, "open_at", None)
        if opener is not None:
            opener(seq)

    def action_back(self) -> None:
        self.app.pop_screen()
