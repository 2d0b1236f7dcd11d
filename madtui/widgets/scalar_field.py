"""ScalarField: one value typed or picked: text, integer, number, JSON, a switch, an enum, or a fixed const."""
from __future__ import annotations

import json
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Select, Static, Switch, TextArea

from madtui.schema_form import FieldSpec, Kind, check_text

from .field import FieldWidget

PLACEHOLDERS = {Kind.STRING: "text", Kind.INTEGER: "integer", Kind.NUMBER: "number", Kind.JSON: "JSON"}
INPUT_TYPES = {Kind.INTEGER: "integer", Kind.NUMBER: "number"}


class SchemaValidator(Validator):
    """Checks typed text against the field's schema (type and bounds) as the Input changes."""

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        error = check_text(self.spec, value)
        return self.failure(error, value) if error else self.success()


class ScalarField(FieldWidget):
    """A label beside an Input, a TextArea, a Switch, a Select or a fixed value, with the error line under it."""

    DEFAULT_CSS = """
    ScalarField .field-multiline { height: auto; min-height: 3; max-height: 12; }
    """

    def __init__(self, spec: FieldSpec, raw: Any, *, label: str | None = None) -> None:
        super().__init__(spec, raw, label=label)
        self.editor = self._make_editor(raw)

    def _make_editor(self, raw: Any) -> Widget:
        """The widget that holds the value."""
        spec = self.spec
        if spec.kind is Kind.BOOLEAN and not spec.nullable:
            return Switch(bool(raw), classes="field-editor")
        if spec.kind in (Kind.BOOLEAN, Kind.ENUM):
            values = (True, False) if spec.kind is Kind.BOOLEAN else spec.enum
            options = [(v if isinstance(v, str) else json.dumps(v), v) for v in values]
            return Select(options, value=raw if raw is not None and raw in values else Select.NULL,
                          prompt="choose", compact=True, classes="field-editor")
        if spec.kind is Kind.CONST:
            return Static(json.dumps(spec.const), classes="field-editor field-const", markup=False)
        placeholder = PLACEHOLDERS.get(spec.kind, "value")
        if spec.nullable and spec.required:
            placeholder += " (empty: null)"
        elif not spec.required:
            placeholder += " (optional)"
        if spec.multiline:
            return TextArea(raw or "", soft_wrap=True, tab_behavior="focus", compact=True, highlight_cursor_line=False,
                            placeholder=f"{placeholder}; several lines", classes="field-editor field-multiline")
        return Input(
            raw or "", placeholder=placeholder, type=INPUT_TYPES.get(spec.kind, "text"),  # type: ignore[arg-type]
            validators=[SchemaValidator(spec)], valid_empty=True, compact=True, classes="field-editor",
            password=spec.secret,
        )

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            if self.label_text:
                yield self.label_widget
            with Vertical(classes="field-body"):
                yield self.editor
                yield from self.compose_description()
                yield self.error_line

    def raw(self) -> Any:
        editor = self.editor
        if isinstance(editor, (Input, Switch)):
            return editor.value
        if isinstance(editor, TextArea):
            return editor.text
        if isinstance(editor, Select):
            return None if editor.is_blank() else editor.value
        return self.spec.const

    async def set_raw(self, raw: Any) -> None:
        editor = self.editor
        if isinstance(editor, Input):
            editor.value = raw or ""
        elif isinstance(editor, TextArea):
            editor.text = raw or ""
        elif isinstance(editor, Switch):
            editor.value = bool(raw)
        elif isinstance(editor, Select):
            if raw is None:
                editor.clear()
            else:
                editor.value = raw

    def show_error(self, message: str | None) -> None:
        super().show_error(message)
        if isinstance(self.editor, (Input, Select, TextArea)):
            self.editor.set_class(message is not None, "-invalid")

    @on(Input.Changed)
    def _recheck(self, event: Input.Changed) -> None:
        """A field showing an error re-checks as it is edited, so a fix clears the line."""
        if self.error is not None:
            self.show_error(check_text(self.spec, event.value))

    @on(TextArea.Changed)
    def _recheck_text(self, event: TextArea.Changed) -> None:
        """Same for a multi-line editor."""
        if self.error is not None:
            self.show_error(check_text(self.spec, event.text_area.text))

    @on(Select.Changed)
    @on(Switch.Changed)
    def _clear_error(self) -> None:
        """Picking a value clears a `choose one` error."""
        if self.error is not None and self.raw() is not None:
            self.show_error(None)
