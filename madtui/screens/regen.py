"""F9, the Regen screen: every candidate of `mad regen` with its gate status; review one as a behaviour diff.

For the selected candidate: the static gate and the interface diff, then each divergence with
the recorded and the candidate step side by side (j/k move between them), then the code diff.
`a` accepts (writes the module, the running ecosystem hot-reloads it), `r` rejects (nothing is
written), `n` asks for an instruction and regenerates (a `mad regen` process, its progress shown).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ..regen.report import interface_line
from ..regen.store import Workspace

COLUMNS = ("candidate", "gate", "review", "recordings", "code")


@dataclass
class Candidate:
    """One candidate folder and its report (None while it is being gated)."""

    mad: str
    number: int
    folder: Path
    report: dict[str, Any] | None

    @property
    def key(self) -> str:
        return f"{self.mad}#{self.number}"

    @property
    def review(self) -> str:
        return (self.report or {}).get("review", "")

    def divergences(self) -> list[dict[str, Any]]:
        """Each recording's first divergence per MAD, in report order."""
        behaviour = (self.report or {}).get("behaviour") or {}
        found = []
        for entry in behaviour.get("recordings", []):
            for mad in entry.get("diverged", []):
                found.append({"recording": entry["recording"], "mad": mad,
                              **entry["mads"][mad]["first_divergence"]})
        return found


def candidates(home: Path) -> list[Candidate]:
    """Every candidate under MAD_HOME/regen, newest first."""
    root = home / "regen"
    found: list[Candidate] = []
    if not root.is_dir():
        return found
    for mad_folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in Workspace(home, mad_folder.name).candidates():
            try:
                report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                report = None
            found.append(Candidate(mad_folder.name, int(folder.name), folder, report))
    return sorted(found, key=lambda c: c.folder.stat().st_mtime, reverse=True)


def gate_text(candidate: Candidate) -> Text:
    report = candidate.report
    if report is None:
        return Text("gating…", style="italic")
    verdict = report.get("verdict")
    if verdict == "same":
        return Text("✓ same", style="green")
    if verdict == "differs":
        return Text("≠ differs", style="yellow")
    stage = (report.get("static") or {}).get("stage") or "behaviour"
    return Text(f"✗ {stage}", style="red")


def row(candidate: Candidate) -> list[Any]:
    report = candidate.report or {}
    gate = report.get("gate") or {}
    code = report.get("code") or {}
    review = Text(candidate.review, style={"accepted": "green", "rejected": "red"}.get(candidate.review, ""))
    return [candidate.key, gate_text(candidate), review,
            Text(str(gate.get("recordings", "–")), justify="right"),
            f"+{code.get('lines_added', 0)} -{code.get('lines_removed', 0)}"]


def pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False, default=str)


class RegenProgress(Message):
    """A line of progress from the `mad regen` process, or its end (report or one-line error)."""

    def __init__(self, update: dict[str, Any] | None = None, report: dict[str, Any] | None = None,
                 error: str | None = None, done: bool = False) -> None:
        super().__init__()
        self.update = update
        self.report = report
        self.error = error
        self.done = done


def progress_text(update: dict[str, Any]) -> str:
    step = update.get("step")
    if step == "generating":
        return f"generating (attempt {update['attempt']} of {update['of']})…"
    if step == "static":
        return "static gate…"
    if step == "behaviour":
        return f"re-running {update['done']} of {update['of']} recordings…"
    return str(update)


class RegenScreen(Screen[None]):
    """The candidates of `mad regen`, newest first, and the review of the selected one."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f9", "back", "Back", show=False),
        Binding("a", "accept", "Accept"),
        Binding("r", "reject", "Reject"),
        Binding("n", "new", "New"),
        Binding("j", "next_divergence", "Next diff"),
        Binding("k", "previous_divergence", "Prev diff"),
    ]

    def __init__(self, home: Path, *, sessions: Path, mad_path: list[Path], provider: str,
                 environ: dict[str, str] | None = None, mad: str | None = None) -> None:
        super().__init__()
        self.home = home
        self.sessions = sessions
        self.mad_path = mad_path
        self.provider = provider
        self.environ = dict(os.environ if environ is None else environ)
        self.mad = mad
        """The MAD `n` regenerates when no candidate is selected (the focused pane's)."""
        self.rows: dict[str, Candidate] = {}
        self.divergence = 0
        self.running = False
        self.progress_lines: list[str] = []
        """What the progress line said during the last regeneration, in order."""

    def compose(self) -> ComposeResult:
        yield Static(id="regen-title")
        yield DataTable(id="regen-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="regen-progress")
        yield Input(placeholder="what should change? (Enter regenerates, esc cancels)", id="regen-instruction")
        with VerticalScroll(id="regen-review"):
            yield Static(id="regen-gate")
            yield Static(id="regen-where")
            with Horizontal(id="regen-sides"):
                yield Static(id="regen-recorded")
                yield Static(id="regen-candidate")
            yield Static(id="regen-code")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#regen-instruction", Input).display = False
        self.table.focus()
        self.reload()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#regen-table", DataTable)

    @property
    def selected(self) -> Candidate | None:
        if not self.table.row_count:
            return None
        key = self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value
        return self.rows.get(key or "")

    # listing -------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        current = select or (self.selected.key if self.selected else None)
        table = self.table
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        self.rows = {}
        for candidate in candidates(self.home):
            self.rows[candidate.key] = candidate
            table.add_row(*row(candidate), key=candidate.key)
        if current in self.rows:
            table.move_cursor(row=table.get_row_index(current), animate=False)
        count = len(self.rows)
        self.query_one("#regen-title", Static).update(
            f"[b]regen[/b] · {count} candidate{'s' * (count != 1)}, newest first"
            + ("" if count else " · n regenerates the focused MAD; mad regen MAD --candidate FILE gates one"))
        self.show()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.divergence = 0
        self.show()

    # the review ------------------------------------------------------------------------
    def show(self) -> None:
        candidate = self.selected
        gate = self.query_one("#regen-gate", Static)
        if candidate is None or candidate.report is None:
            gate.update("" if candidate is None else "being gated…")
            for name in ("where", "recorded", "candidate", "code"):
                self.query_one(f"#regen-{name}", Static).update("")
            return
        report = candidate.report
        static = report["static"]
        lines = Text()
        lines.append(f"{candidate.key}  ", style="bold")
        lines.append("static gate passed" if static["ok"] else f"static gate FAILED at {static['stage']}: "
                     f"{static['error']}", style="green" if static["ok"] else "red")
        lines.append(f"\ninterface: {interface_line(report.get('interface'))}")
        behaviour = report.get("behaviour")
        if behaviour is not None:
            gate_figures = report["gate"]
            count = gate_figures["recordings"]
            lines.append(f"\nbehaviour: {count} recording{'s' * (count != 1)}, {gate_figures['events']} events, "
                         f"{gate_figures['llm_tokens']} LLM tokens")
            for entry in behaviour.get("recordings", []):
                status = entry["status"] if entry["status"] != "unusable" else f"unusable: {entry['reason']}"
                lines.append(f"\n  {entry['recording']}  {status}",
                             style={"same": "green", "differs": "yellow"}.get(entry["status"], "red"))
        generation = report.get("generation") or {}
        if generation.get("generated"):
            lines.append(f"\ngeneration: {generation['attempts']} attempts, {generation['input_tokens']} tokens in, "
                         f"{generation['output_tokens']} out")
        gate.update(lines)
        self._show_divergence(candidate)
        unified = (report.get("code") or {}).get("unified") or "(no change to the code)"
        self.query_one("#regen-code", Static).update(Syntax(unified, "diff", theme="ansi_dark", word_wrap=True))

    def _show_divergence(self, candidate: Candidate) -> None:
        found = candidate.divergences()
        where = self.query_one("#regen-where", Static)
        recorded = self.query_one("#regen-recorded", Static)
        new = self.query_one("#regen-candidate", Static)
        if not found:
            where.update("no divergence" if candidate.report and candidate.report.get("behaviour") else "")
            recorded.update("")
            new.update("")
            return
        self.divergence %= len(found)
        d = found[self.divergence]
        where.update(Text(f"divergence {self.divergence + 1} of {len(found)} · {d['recording']} · {d['mad']} at its "
                          f"event {d['index'] + 1}  (j/k: next/previous)", style="bold yellow"))
        recorded.update(Text("recorded\n", style="bold") + Text(pretty(d["recorded"])))
        new.update(Text("candidate\n", style="bold") + Text(pretty(d["candidate"])))

    def action_next_divergence(self) -> None:
        self.divergence += 1
        if self.selected is not None:
            self._show_divergence(self.selected)

    def action_previous_divergence(self) -> None:
        self.divergence -= 1
        if self.selected is not None:
            self._show_divergence(self.selected)

    # accept, reject ------------------------------------------------------------------------
    def _mark(self, candidate: Candidate, review: str, **extra: Any) -> None:
        assert candidate.report is not None
        candidate.report["review"] = review
        candidate.report.update(extra)
        Workspace.save_report(candidate.folder, candidate.report)

    def action_accept(self) -> None:
        candidate = self.selected
        if candidate is None or candidate.report is None:
            self.notify("no candidate to accept", severity="warning")
            return
        report = candidate.report
        if not report["static"]["ok"]:
            self.notify(f"{candidate.key} failed its static gate: it cannot be written", severity="error")
            return
        if candidate.review == "accepted":
            self.notify(f"{candidate.key} is already written", severity="warning")
            return
        module = Path(report["module"])
        source = (candidate.folder / "candidate.py").read_text(encoding="utf-8")
        try:
            applied = Workspace(self.home, candidate.mad).apply(module, source, candidate.folder)
        except OSError as exc:
            self.notify(f"cannot write {module}: {exc}", severity="error")
            return
        self._mark(candidate, "accepted", applied=applied)
        self.notify(f"{candidate.key} written to {module.name}; the ecosystem reloads it "
                    f"(mad regen --rollback {candidate.mad} undoes it)")
        self.reload()

    def action_reject(self) -> None:
        candidate = self.selected
        if candidate is None or candidate.report is None:
            self.notify("no candidate to reject", severity="warning")
            return
        self._mark(candidate, "rejected")
        self.notify(f"{candidate.key} rejected; nothing was written")
        self.reload()

    # regenerating ------------------------------------------------------------------------------
    def action_new(self) -> None:
        if self.running:
            self.notify("a regeneration is running", severity="warning")
            return
        mad = self.selected.mad if self.selected else self.mad
        if mad is None:
            self.notify("focus a MAD's pane first (or select a candidate)", severity="warning")
            return
        box = self.query_one("#regen-instruction", Input)
        box.display = True
        box.border_title = f"regenerate {mad}"
        box.value = ""
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#regen-instruction", Input)
        box.display = False
        mad = self.selected.mad if self.selected else self.mad
        self.table.focus()
        if mad is None or not event.value.strip():
            return
        self.running = True
        self.progress_lines = []
        self.query_one("#regen-progress", Static).update(f"regenerating {mad}…")
        self.regenerate(mad, event.value.strip())

    def on_key(self, event: Any) -> None:
        box = self.query_one("#regen-instruction", Input)
        if event.key == "escape" and box.display:
            event.stop()
            box.display = False
            self.table.focus()

    def command(self, mad: str, instruction: str) -> list[str]:
        args = [sys.executable, "-m", "madtui", "regen", mad, instruction, "--json", "--home", str(self.home),
                "--sessions", str(self.sessions), "--provider", self.provider]
        for folder in self.mad_path:
            args += ["--mad-path", str(folder)]
        return args

    @work(exclusive=True, group="regen")
    async def regenerate(self, mad: str, instruction: str) -> None:
        """Run `mad regen` in its own process; its progress lines and its report come back as messages."""
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(mad, instruction), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=self.environ)
        except OSError as exc:
            self.post_message(RegenProgress(error=str(exc), done=True))
            return
        assert process.stdout is not None and process.stderr is not None
        last_error = ""
        output = asyncio.ensure_future(process.stdout.read())
        async for line in process.stderr:
            text = line.decode(errors="replace").strip()
            try:
                update = json.loads(text).get("progress")
            except (ValueError, AttributeError):
                update = None
            if update is not None:
                self.post_message(RegenProgress(update=update))
            elif text:
                last_error = text.removeprefix("mad: error: ")
        out = await output
        code = await process.wait()
        try:
            report = json.loads(out) if code in (0, 1) else None
        except ValueError:
            report = None
        self.post_message(RegenProgress(report=report, error=None if report else last_error or f"exit {code}",
                                        done=True))

    def on_regen_progress(self, event: RegenProgress) -> None:
        line = self.query_one("#regen-progress", Static)
        if not event.done:
            assert event.update is not None
            self.progress_lines.append(progress_text(event.update))
            line.update(self.progress_lines[-1])
            self.reload()
            return
        self.running = False
        if event.report is None:
            line.update(Text(f"regeneration failed: {event.error}", style="red"))
            self.notify(f"regeneration failed: {event.error}", severity="error")
            return
        report = event.report
        self.progress_lines.append(f"{report['mad']}#{report['candidate']['number']}: {report['verdict']}")
        line.update(self.progress_lines[-1])
        self.reload(select=f"{report['mad']}#{report['candidate']['number']}")

    def action_back(self) -> None:
        self.app.pop_screen()
