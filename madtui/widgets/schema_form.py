"""SchemaForm: a form built from a tool's JSON input schema, giving the exact argument dict."""
from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Select, Static, Switch, TextArea

from madtui.schema_form import Path, SchemaModel

from .field import FieldWidget
from .object_field import ObjectField


class SchemaForm(Vertical):
    """Editors for every argument of a tool; `value()` assembles, `validate()` shows errors beside fields."""

    DEFAULT_CSS = """
    SchemaForm { height: auto; }
    """

    error_count: reactive[int] = reactive(0)
    """How many fields showed an error at the last validate()."""

    class Changed(Message):
        """A value in the form changed."""

        def __init__(self, form: SchemaForm) -> None:
            super().__init__()
            self.form = form

        @property
        def control(self) -> SchemaForm:
            """The form that changed."""
            return self.form

    def __init__(self, schema: dict[str, Any], initial: dict[str, Any] | None = None, *,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.model = SchemaModel(schema)
        raw = self.model.from_arguments(initial) if initial else self.model.initial()
        self.root = ObjectField(self.model.root, raw, label="", root=True)

    def compose(self) -> ComposeResult:
        if not self.model.root.properties:
            yield Static("This tool takes no arguments.", classes="form-empty")
        yield self.root

    def raw(self) -> dict[str, Any]:
        """The form value every editor holds now (text as typed)."""
        return self.root.raw()

    def value(self) -> dict[str, Any]:
        """The exact argument dict; raises InvalidArguments when a field is wrong."""
        return self.model.arguments(self.raw())

    def validate(self) -> dict[Path, str]:
        """Check every field, show each error beside its field, and return them (empty: ready to send)."""
        errors = self.model.validate(self.raw())
        self.root.show_errors(errors)
        self.error_count = len(errors)
        return errors

    async def set_value(self, arguments: dict[str, Any]) -> None:
        """Refill every editor with these arguments and clear the errors."""
        await self.root.set_raw(self.model.from_arguments(arguments))
        self.root.show_errors({})
        self.error_count = 0

    def focus_first(self, *, invalid: bool = False) -> bool:
        """Focus the first editor (the first one showing an error, with `invalid`); False if none."""
        for field in self.query(FieldWidget):
            if invalid and not field.has_class("-invalid"):
                continue
            target = field.first_focusable()
            if target is not None:
                target.focus()
                if isinstance(target, Input):
                    target.select_all()
                return True
        return False

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _edited(self) -> None:
        self.post_message(self.Changed(self))

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Enter in a field moves on to the next one (ctrl+s sends the form)."""
        event.stop()
        self.screen.focus_next()
