"""ChoiceField: a oneOf/anyOf as a Select of variants that swaps the editor under it."""
from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Select

from madtui.schema_form import ChoiceValue, FieldSpec, Path
from madtui.schema_form.model import initial_raw

from .field import FieldWidget, build_field


class ChoiceField(FieldWidget):
    """Pick a variant, then fill its editor; values typed in a variant survive switching away and back."""

    DEFAULT_CSS = """
    ChoiceField .choice-body { height: auto; }
    """

    index: reactive[int | None] = reactive(None)
    """Which variant is chosen (None: none)."""

    def __init__(self, spec: FieldSpec, raw: Any, *, label: str | None = None) -> None:
        super().__init__(spec, raw, label=label)
        self.allows_none = spec.nullable or not spec.required
        choice = raw if isinstance(raw, ChoiceValue) else ChoiceValue(None)
        if choice.index is None and not self.allows_none:
            choice = ChoiceValue(0, initial_raw(spec.variants[0]))
        self.set_reactive(ChoiceField.index, choice.index)
        self._first = choice
        self._kept: dict[int, Any] = {}
        options = [(variant.title, position) for position, variant in enumerate(spec.variants)]
        self.select: Select[int] = Select(
            options, value=Select.NULL if choice.index is None else choice.index,
            allow_blank=self.allows_none, prompt="none" if spec.nullable else "choose",
            compact=True, classes="choice-select",
        )
        self.body = Vertical(classes="choice-body")

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            if self.label_text:
                yield self.label_widget
            with Vertical(classes="field-body"):
                yield self.select
                yield from self.compose_description()
                yield self.error_line
                with self.body:
                    if self.index is not None:
                        yield self._editor(self.index, self._first.raw)

    def _editor(self, index: int, raw: Any) -> FieldWidget:
        """The editor of one variant."""
        return build_field(self.spec.variants[index], raw, label="")

    def variant_field(self) -> FieldWidget | None:
        """The editor of the chosen variant, if any."""
        return next(iter(self.body.query_children(FieldWidget)), None)

    def raw(self) -> ChoiceValue:
        field = self.variant_field()
        return ChoiceValue(self.index, field.raw() if field is not None else None)

    async def set_raw(self, raw: Any) -> None:
        choice = raw if isinstance(raw, ChoiceValue) else ChoiceValue(None)
        if choice.index is None and not self.allows_none:
            choice = ChoiceValue(0, initial_raw(self.spec.variants[0]))
        self._kept.clear()
        await self._show(choice.index, choice.raw)
        if choice.index is None:
            self.select.clear()
        else:
            self.select.value = choice.index

    async def _show(self, index: int | None, raw: Any) -> None:
        """Swap the editor under the Select for variant `index`."""
        self.index = index
        await self.body.remove_children()
        if index is not None:
            await self.body.mount(self._editor(index, raw))

    def show_errors(self, errors: dict[Path, str]) -> None:
        field = self.variant_field()
        if field is None:
            self.show_error(errors.get(()))
        else:
            self.show_error(None)
            field.show_errors(errors)

    @on(Select.Changed)
    async def _variant_chosen(self, event: Select.Changed) -> None:
        """Keep what the old variant held and show the new one."""
        if event.select is not self.select:
            return
        index = None if event.value is Select.NULL else int(str(event.value))
        if index == self.index:
            return
        current = self.variant_field()
        if current is not None and self.index is not None:
            self._kept[self.index] = current.raw()
        raw = self._kept.get(index, initial_raw(self.spec.variants[index])) if index is not None else None
        await self._show(index, raw)
        if self.error is not None and index is not None:
            self.show_error(None)
