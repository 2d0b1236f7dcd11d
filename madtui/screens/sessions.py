"""The sessions screen: every recording, newest first; search their messages; replay one, or re-run it
against the current code and see what the change did to behaviour."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from mads.kernel.errors import UsageError
from mads.kernel.journal import reader

from ..diff import render
from ..widgets.sizes import size_text

COLUMNS = ("session", "command", "started", "duration", "events", "errors", "MADs", "size")
HIT_COLUMNS = ("session", "when", "event", "sender", "message")


def summary_row(summary: reader.SessionSummary, live: bool) -> list[Any]:
    """One recording as table cells."""
    started = datetime.fromtimestamp(summary.started).strftime("%Y-%m-%d %H:%M:%S") if summary.started else "?"
    name = Text(("● " if live else "  ") + summary.id, style="bold" if live else "")
    errors = Text(str(summary.errors), style="red" if summary.errors else "", justify="right")
    return [name, summary.command or "?", started, Text(f"{summary.duration_s:.1f} s", justify="right"),
            Text(f"{summary.events:,}", justify="right"), errors, ",".join(summary.mads),
            Text(size_text(summary.size), justify="right")]


class SessionsListed(Message):
    """The listing worker summarised the recordings (newest first); `skipped` files were not journals."""

    def __init__(self, rows: list[tuple[Path, reader.SessionSummary]], skipped: int) -> None:
        super().__init__()
        self.rows = rows
        self.skipped = skipped


class SessionsFound(Message):
    """The search worker's hits for the text, or the one-line reason there are none to show."""

    def __init__(self, text: str, hits: list[dict[str, Any]], error: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.hits = hits
        self.error = error


class RerunFinished(Message):
    """The re-run worker is done: the report (as `mad rerun --json` prints it) or a one-line error."""

    def __init__(self, source: Path, report: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.report = report
        self.error = error


def rerun_command(path: Path, sessions: Path) -> list[str]:
    """`mad rerun` of a recording, in its own process: the re-run ecosystem never shares the workbench's."""
    return [sys.executable, "-m", "madtui", "rerun", str(path), "--json", "--sessions", str(sessions)]


class SessionsScreen(Screen[None]):
    """The recordings in the sessions folder; Enter replays the selected one, / searches every message."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f8", "back", "Back", show=False),
        Binding("enter", "open", "Replay", show=True),
        Binding("slash", "search", "Search"),
        Binding("R,shift+r", "rerun", "Re-run"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self, sessions: Path, live: Path | None = None) -> None:
        super().__init__()
        self.sessions = sessions
        self.live = live
        """The journal of the running ecosystem: marked, and replayed as far as it is written."""
        self.paths: dict[str, Path] = {}
        self.rerunning: Path | None = None
        """The recording being re-run, if any."""
        self.select_after: str | None = None
        """The session to put the cursor on when the list is next shown (a re-run's own recording)."""

    def compose(self) -> ComposeResult:
        yield Static(id="sessions-title")
        yield Input(placeholder="search the messages of every session, then Enter (esc: all sessions)",
                    id="sessions-search")
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="sessions-hint")
        yield Static(id="sessions-report")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self.action_reload()

    def _reset(self, columns: tuple[str, ...]) -> None:
        """Empty the table, with these columns."""
        table = self.table
        table.clear(columns=True)
        table.add_columns(*columns)
        self.paths = {}

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#sessions-table", DataTable)

    @property
    def selected(self) -> Path | None:
        """The recording under the cursor."""
        if not self.table.row_count:
            return None
        key = self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value
        return self.paths.get(key or "")

    def _title(self, text: str) -> None:
        self.query_one("#sessions-title", Static).update(f"[b]sessions[/b] · {self.sessions} · {text}")

    # listing -----------------------------------------------------------------
    def action_reload(self) -> None:
        self.query_one("#sessions-search", Input).value = ""
        self._title("reading…")
        self.list_sessions()

    @work(thread=True, exclusive=True, group="sessions")
    def list_sessions(self) -> None:
        """Summarise every recording (each one is a file to open), off the screen's thread."""
        rows: list[tuple[Path, reader.SessionSummary]] = []
        skipped = 0
        for path in reversed(reader.session_files(self.sessions)):
            try:
                rows.append((path, reader.summarize(path)))
            except UsageError:
                skipped += 1
        self.post_message(SessionsListed(rows, skipped))

    def on_sessions_listed(self, event: SessionsListed) -> None:
        rows, skipped = event.rows, event.skipped
        table = self.table
        self._reset(COLUMNS)
        for path, summary in rows:
            self.paths[summary.id] = path
            table.add_row(*summary_row(summary, self._is_live(path)), key=summary.id)
        if self.select_after is not None and self.select_after in self.paths:
            table.move_cursor(row=table.get_row_index(self.select_after), animate=False)
            self.select_after = None
        note = f" · {skipped} unreadable file{'s' * (skipped != 1)} skipped" if skipped else ""
        self._title(f"{len(rows)} recording{'s' * (len(rows) != 1)}, newest first{note}")
        self.query_one("#sessions-hint", Static).update(
            "Enter replays the selected recording · R re-runs it on the current code · / searches"
            if rows else "no recordings yet: every session of mad tui, send, call, run and mcp lands here")

    def _is_live(self, path: Path) -> bool:
        return self.live is not None and path.resolve() == self.live.resolve()

    # searching ---------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#sessions-search", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.action_reload()
            return
        self._title(f"searching for {text!r}…")
        self.search_sessions(text)

    @work(thread=True, exclusive=True, group="sessions")
    def search_sessions(self, text: str) -> None:
        """Full-text search over every recording (each one a file to open), off the screen's thread."""
        try:
            self.post_message(SessionsFound(text, reader.search(self.sessions, text, limit=200)))
        except UsageError as exc:
            self.post_message(SessionsFound(text, [], str(exc)))

    def on_sessions_found(self, event: SessionsFound) -> None:
        if event.error is not None:
            self._title(event.error)
            self.notify(event.error, severity="warning")
            return
        text, hits = event.text, event.hits
        table = self.table
        self._reset(HIT_COLUMNS)
        for hit in hits:
            key = f"{hit['session']}#{hit['seq']}"
            self.paths[key] = self.sessions / f"{hit['session']}.db"
            when = datetime.fromtimestamp(hit["wall"]).strftime("%Y-%m-%d %H:%M:%S") if hit.get("wall") else "?"
            table.add_row(Text("  " + hit["session"]), when, Text(f"#{hit['seq']}", justify="right"),
                          hit.get("sender") or "", Text(" ".join(str(hit["snippet"]).split())), key=key)
        found = f"{len(hits)} message{'s' * (len(hits) != 1)} matching {text!r}"
        self._title(found + ("" if hits else " · esc shows every session"))
        table.focus()

    def on_key(self, event: Any) -> None:
        search = self.query_one("#sessions-search", Input)
        if event.key == "escape" and search.has_focus:
            event.stop()
            self.action_reload()
            self.table.focus()

    # opening -----------------------------------------------------------------
    def action_open(self) -> None:
        path = self.selected
        if path is None:
            self.notify("no recording to replay", severity="warning")
            return
        self.app.open_replay(path)  # type: ignore[attr-defined]

    # re-running ------------------------------------------------------------------
    def action_rerun(self) -> None:
        path = self.selected
        if path is None:
            self.notify("no recording to re-run", severity="warning")
            return
        if self.rerunning is not None:
            self.notify(f"already re-running {self.rerunning.stem}", severity="warning")
            return
        self.rerunning = path
        self.query_one("#sessions-report", Static).update(
            f"re-running {path.stem} against the current code (its inputs, its LLM answers)…")
        self.run_again(path)

    @work(thread=True, exclusive=True, group="rerun")
    def run_again(self, path: Path) -> None:
        """Run `mad rerun --json` on the recording; the report comes back as a message."""
        try:
            done = subprocess.run(rerun_command(path, self.sessions), capture_output=True, text=True,
                                  timeout=900, env=dict(os.environ), check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self.post_message(RerunFinished(path, None, f"{type(exc).__name__}: {exc}"))
            return
        if done.returncode in (0, 1):
            try:
                self.post_message(RerunFinished(path, json.loads(done.stdout)))
                return
            except ValueError:
                pass
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"mad rerun exited {done.returncode}"
        self.post_message(RerunFinished(path, None, reason.removeprefix("mad: error: ")))

    def on_rerun_finished(self, event: RerunFinished) -> None:
        self.rerunning = None
        report_line = self.query_one("#sessions-report", Static)
        if event.report is None:
            report_line.update(Text(f"re-run of {event.source.stem} failed: {event.error}", style="red"))
            self.notify(f"re-run failed: {event.error}", severity="error")
            return
        report = event.report
        report_line.update(Text(render(report), style="" if report["same"] else "yellow"))
        verdict = "same behaviour" if report["same"] else f"behaviour differs: {', '.join(report['diverged'])}"
        self.notify(f"{event.source.stem}: {verdict}", severity="information" if report["same"] else "warning")
        self.select_after = report["b"]["session"]  # Enter replays what the new code did
        self.action_reload()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_back(self) -> None:
        self.app.pop_screen()
