"""ToolFormScreen: call one tool through a form built from its input schema, and show the result.

`call(name, arguments, progress)` reaches the tool and returns its JSON result. A tool
error is either raised (any exception: its first line is what the user sees) or returned
as `{"is_error": True, "text": "one line"}`; both show as one error line. After every call
the screen posts `ToolFormScreen.Called(tool, arguments, result)`, with an error or a
cancellation given in that same `{"is_error": True, "text": ...}` shape, so the app can
keep a history.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.json import JSON
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState

from madtui.schema_form import SchemaError
from madtui.widgets.schema_form import SchemaForm

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
ToolCall = Callable[[str, dict[str, Any], ProgressCallback], Awaitable[Any]]
CANCELLED = "cancelled"
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "required": []}


def error_result(text: str) -> dict[str, Any]:
    """A result that says the call failed, in one line."""
    return {"is_error": True, "text": text}


def is_error_result(result: Any) -> bool:
    """True for `{"is_error": True, ...}`."""
    return isinstance(result, dict) and result.get("is_error") is True


def one_line(error: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def result_text(result: Any) -> str:
    """The result as indented JSON text (what ctrl+y copies and ctrl+o saves)."""
    return json.dumps(result, indent=2, ensure_ascii=False, default=str)


class ToolFormScreen(Screen[None]):
    """A tool's name, description and argument form; ctrl+s calls it, the result shows below."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Call"),
        Binding("escape,ctrl+c", "cancel", "Cancel call", priority=True),
        Binding("escape", "close", "Back"),
        Binding("ctrl+r", "repeat", "Repeat last"),
        Binding("ctrl+y", "copy_result", "Copy result", priority=True),
        Binding("ctrl+o", "save_result", "Save result"),
    ]

    DEFAULT_CSS = """
    ToolFormScreen { layout: vertical; }
    ToolFormScreen #tool-header { height: auto; padding: 0 1; }
    ToolFormScreen #tool-name { text-style: bold; }
    ToolFormScreen #tool-description { color: $text-muted; }
    ToolFormScreen #form-scroll { height: 1fr; padding: 0 1; }
    ToolFormScreen #call-progress { height: auto; display: none; padding: 0 1; }
    ToolFormScreen.-running #call-progress { display: block; }
    ToolFormScreen #status { height: auto; padding: 0 1; }
    ToolFormScreen #status.-error { color: $error; }
    ToolFormScreen #save-path { display: none; }
    ToolFormScreen.-saving #save-path { display: block; }
    ToolFormScreen #result-scroll { height: auto; max-height: 50%; display: none; padding: 0 1; }
    ToolFormScreen.-has-result #result-scroll { display: block; }
    """

    running: reactive[bool] = reactive(False, bindings=True)
    """True while a call is in flight."""

    class Called(Message):
        """A call finished (result, error or cancellation); for the app's history."""

        def __init__(self, tool: str, arguments: dict[str, Any], result: Any) -> None:
            super().__init__()
            self.tool = tool
            self.arguments = arguments
            self.result = result

    class Progress(Message):
        """The running call reported progress; a newer report replaces one not yet shown."""

        def __init__(self, progress: float, total: float | None, message: str | None) -> None:
            super().__init__()
            self.progress = progress
            self.total = total
            self.message = message

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ToolFormScreen.Progress)

    def __init__(self, tool: dict[str, Any], call: ToolCall, initial: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.tool = tool
        self.tool_name: str = tool["name"]
        self._call = call
        self.initial = initial
        self.last_arguments: dict[str, Any] | None = None
        self.last_result: Any = None
        self.has_result = False
        self._worker: Worker[Any] | None = None
        self._pending: dict[str, Any] = {}
        schema = tool.get("input_schema") or tool.get("inputSchema") or EMPTY_SCHEMA
        try:
            self.form: SchemaForm | None = SchemaForm(schema, initial, id="form")
            self.schema_error = ""
        except SchemaError as exc:
            self.form, self.schema_error = None, f"cannot build a form for this tool: {exc}"

    def compose(self) -> ComposeResult:
        with Vertical(id="tool-header"):
            yield Static(self.tool_name, id="tool-name", markup=False)
            yield Static(self.tool.get("description") or "", id="tool-description", markup=False)
        with VerticalScroll(id="form-scroll", can_focus=False):
            if self.form is not None:
                yield self.form
                yield Button("Call  ctrl+s", id="submit", variant="primary", compact=True)
        with Vertical(id="call-progress"):
            yield ProgressBar(id="progress", show_eta=False)
            yield Static("", id="progress-message", markup=False)
        yield Static(self.schema_error, id="status", classes="-error" if self.schema_error else "", markup=False)
        save_path = Input(placeholder="save the result to…", id="save-path")
        save_path.border_title = "save the result as JSON to (enter saves, escape closes)"
        yield save_path
        with VerticalScroll(id="result-scroll"):
            yield Static("", id="result")
        yield Footer()

    def on_mount(self) -> None:
        if self.form is not None:
            self.call_after_refresh(self.form.focus_first)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel only while running; copy and save once there is a result; repeat after a call."""
        if action == "cancel":
            return self.running
        if action in ("copy_result", "save_result"):
            return True if self.has_result else None
        if action == "repeat":
            return True if self.last_arguments is not None else None
        return True

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")

    def set_status(self, text: str, *, error: bool = False) -> None:
        """Show one line under the form."""
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(error, "-error")

    # calling ---------------------------------------------------------------------------
    def action_submit(self) -> None:
        """Check the form; with errors, show them and send nothing; otherwise call the tool."""
        if self.form is None:
            return
        if self.running:
            self.notify("a call is already running (escape cancels it)", severity="warning")
            return
        errors = self.form.validate()
        if errors:
            self.form.focus_first(invalid=True)
            count = len(errors)
            self.set_status(f"{count} field{'s' if count != 1 else ''} to fix; nothing was sent", error=True)
            return
        arguments = self.form.value()
        self.last_arguments = arguments
        self._pending = arguments
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#progress-message", Static).update(f"calling {self.tool_name}…")
        self.set_status("")
        self.running = True
        self._worker = self._run_call(arguments)

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @work(exclusive=True, exit_on_error=False, group="tool-call")
    async def _run_call(self, arguments: dict[str, Any]) -> Any:
        """Await the call; the outcome arrives as this worker's state change."""
        return await self._call(self.tool_name, arguments, self._report_progress)

    async def _report_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.post_message(self.Progress(progress, total, message))

    @on(Progress)
    def _show_progress(self, event: Progress) -> None:
        if not self.running:
            return
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=event.total, progress=event.progress)
        counted = f"{event.progress:g}" + (f"/{event.total:g}" if event.total else "")
        self.query_one("#progress-message", Static).update(f"{event.message or self.tool_name}  {counted}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._worker or event.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return
        if event.state is WorkerState.SUCCESS:
            self._finish(event.worker.result)
        elif event.state is WorkerState.ERROR:
            error = event.worker.error
            self.log.error(f"{self.tool_name} failed", error)
            self._finish(error_result(one_line(error) if error else "failed"))
        elif event.state is WorkerState.CANCELLED:
            self._finish(error_result(CANCELLED))

    def action_cancel(self) -> None:
        """Cancel the running call."""
        if self._worker is not None:
            self._worker.cancel()

    def _finish(self, result: Any) -> None:
        """Show the outcome of a call and tell the app."""
        self.running = False
        self._worker = None
        self.last_result, self.has_result = result, True
        body = self.query_one("#result", Static)
        if is_error_result(result):
            text = str(result.get("text") or "failed")
            self.set_status(text if text == CANCELLED else f"✗ {text}", error=True)
            body.update("")
            self.set_class(False, "-has-result")
        else:
            self.set_status("✓ done")
            body.update(Text(result) if isinstance(result, str) else JSON.from_data(result, indent=2, default=str))
            self.set_class(True, "-has-result")
            self.query_one("#result-scroll").focus()
        self.refresh_bindings()
        self.post_message(self.Called(self.tool_name, self._pending, result))

    # after a call ----------------------------------------------------------------------
    async def action_repeat(self) -> None:
        """Refill the form with the last call's arguments, to edit and send again."""
        if self.form is None or self.last_arguments is None:
            return
        await self.form.set_value(self.last_arguments)
        self.form.focus_first()
        self.set_status("the last call's arguments: edit them and press ctrl+s")

    def action_copy_result(self) -> None:
        """Copy the last result as JSON."""
        if self.has_result:
            self.app.copy_to_clipboard(result_text(self.last_result))
            self.notify("result copied")

    def action_save_result(self) -> None:
        """Ask where to save the last result."""
        if not self.has_result:
            return
        path_input = self.query_one("#save-path", Input)
        path_input.value = path_input.value or f"{self.tool_name}-result.json"
        self.add_class("-saving")
        path_input.focus()

    @on(Input.Submitted, "#save-path")
    def _save(self, event: Input.Submitted) -> None:
        event.stop()
        target = Path(event.value.strip() or f"{self.tool_name}-result.json").expanduser().resolve()
        try:
            target.write_text(result_text(self.last_result) + "\n", encoding="utf-8")
        except OSError as exc:
            self.set_status(f"could not save to {target}: {exc.strerror or exc}", error=True)
            return
        self._close_save_prompt()
        self.set_status(f"saved to {target}")
        self.notify(f"saved to {target}")

    def _close_save_prompt(self) -> None:
        self.remove_class("-saving")
        if self.form is not None:
            self.form.focus_first()

    def action_close(self) -> None:
        """Close the save prompt, or leave the screen."""
        if self.has_class("-saving"):
            self._close_save_prompt()
        else:
            self.dismiss(None)
