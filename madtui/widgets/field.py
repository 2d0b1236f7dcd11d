"""FieldWidget: the base of every schema form editor (label, editor, error line under it), and build_field."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Label, Static

from madtui.schema_form import FieldSpec, Kind, Path


class FieldWidget(Vertical):
    """One field of a SchemaForm; subclasses compose the editor and know its form value."""

    DEFAULT_CSS = """
    FieldWidget { height: auto; }
    FieldWidget .field-row { height: auto; }
    FieldWidget .field-label { width: 16; padding-right: 1; }
    FieldWidget .field-body { width: 1fr; height: auto; }
    FieldWidget .field-description { color: $text-muted; }
    FieldWidget .field-error { display: none; color: $error; }
    FieldWidget .field-error.-invalid { display: block; }
    """

    def __init__(self, spec: FieldSpec, raw: Any, *, label: str | None = None, classes: str = "") -> None:
        super().__init__(classes=f"field field-{spec.kind.value} {classes}".strip())
        self.spec = spec
        self.initial_raw = raw
        self.label_text = spec.label if label is None else label
        self.error: str | None = None
        self.label_widget = Label(self.label_text, classes="field-label")
        self.error_line = Static("", classes="field-error", markup=False)

    def compose_description(self) -> ComposeResult:
        """The schema's description of the field, when it has one."""
        if self.spec.description:
            yield Static(self.spec.description, classes="field-description", markup=False)

    def set_label(self, text: str) -> None:
        """Change the label (array items renumber after a removal)."""
        self.label_text = text
        self.label_widget.update(text)

    def raw(self) -> Any:
        """The form value the editor holds now."""
        raise NotImplementedError

    async def set_raw(self, raw: Any) -> None:
        """Show this form value in the editor."""
        raise NotImplementedError

    def show_errors(self, errors: dict[Path, str]) -> None:
        """Show the error for this field (key `()`); containers pass the rest on to their children."""
        self.show_error(errors.get(()))

    def show_error(self, message: str | None) -> None:
        """Show one line under the field, or clear it."""
        self.error = message
        self.set_class(message is not None, "-invalid")
        self.error_line.update(message or "")
        self.error_line.set_class(message is not None, "-invalid")

    def first_focusable(self) -> Widget | None:
        """The first widget inside this field that takes focus."""
        return next((w for w in self.query("*") if w.focusable), None)


def child_errors(errors: dict[Path, str], key: str | int) -> dict[Path, str]:
    """The errors below one child, with paths relative to it."""
    return {path[1:]: message for path, message in errors.items() if path and path[0] == key}


def build_field(spec: FieldSpec, raw: Any, *, label: str | None = None) -> FieldWidget:
    """The editor widget for one field."""
    from .array_field import ArrayField
    from .choice_field import ChoiceField
    from .object_field import ObjectField
    from .scalar_field import ScalarField

    if spec.kind is Kind.OBJECT:
        return ObjectField(spec, raw, label=label)
    if spec.kind is Kind.ARRAY:
        return ArrayField(spec, raw, label=label)
    if spec.kind is Kind.CHOICE:
        return ChoiceField(spec, raw, label=label)
    return ScalarField(spec, raw, label=label)
