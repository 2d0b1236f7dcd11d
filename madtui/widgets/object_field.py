"""ObjectField: a nested object as a bordered group titled with its name, one editor per property."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from madtui.schema_form import FieldSpec, Path
from madtui.schema_form.model import initial_raw

from .field import FieldWidget, build_field, child_errors


class ObjectField(FieldWidget):
    """The properties of an object; the form's root is one too, drawn without a border."""

    DEFAULT_CSS = """
    ObjectField { height: auto; }
    ObjectField.-group { border: round $primary 50%; padding: 0 1; }
    """

    def __init__(self, spec: FieldSpec, raw: Any, *, label: str | None = None, root: bool = False) -> None:
        super().__init__(spec, raw, label=label, classes="-root" if root else "-group")
        self.root = root
        if not root and self.label_text:
            self.border_title = self.label_text

    def compose(self) -> ComposeResult:
        if not self.root:
            yield from self.compose_description()
        given = self.initial_raw if isinstance(self.initial_raw, dict) else {}
        for prop in self.spec.properties:
            yield build_field(prop, given.get(prop.name, initial_raw(prop)))
        yield self.error_line

    def fields(self) -> list[FieldWidget]:
        """The property editors, in schema order."""
        return list(self.query_children(FieldWidget))

    def set_label(self, text: str) -> None:
        self.label_text = text
        self.border_title = text or None

    def raw(self) -> dict[str, Any]:
        return {child.spec.name: child.raw() for child in self.fields()}

    async def set_raw(self, raw: Any) -> None:
        given = raw if isinstance(raw, dict) else {}
        for child in self.fields():
            await child.set_raw(given.get(child.spec.name, initial_raw(child.spec)))

    def show_errors(self, errors: dict[Path, str]) -> None:
        self.show_error(errors.get(()))
        for child in self.fields():
            child.show_errors(child_errors(errors, child.spec.name))
