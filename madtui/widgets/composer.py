"""The composer: one line that goes onto the bus as @human, with completion and history."""
from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from ..completion import Completer


class CompleterSuggester(Suggester):
    """Feeds the Input's inline suggestion from the Completer."""

    def __init__(self, completer: Completer) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.completer = completer

    async def get_suggestion(self, value: str) -> str | None:
        return self.completer.complete(value)


class Composer(Input):
    """Enter sends the line as @human; `@` completes MADs, tools and parameters (tab or → accepts)."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    class Sent(Message):
        """The user pressed Enter on a non-empty line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, completer: Completer, default_mad: str = "fiedler", **kwargs: object) -> None:
        super().__init__(placeholder=f"@Horace list_files   (@ completes · Enter sends · no @: to @{default_mad})",
                         suggester=CompleterSuggester(completer), **kwargs)  # type: ignore[arg-type]
        self.completer = completer
        self.history: list[str] = []
        self._position = 0

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "tab":
            # Completed here rather than from the inline suggestion, which arrives later from a worker:
            # a fast typist's tab would otherwise move the focus away.
            completion = self.completer.complete(self.value) if self.cursor_at_end else None
            if completion:
                event.stop()
                event.prevent_default()
                self.value = completion
                self.cursor_position = len(self.value)
                return
        await super()._on_key(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An empty composer leaves ← and → to the screen, which pages through the MAD panes."""
        if action in ("cursor_left", "cursor_right") and not self.value:
            return False
        return super().check_action(action, parameters)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._position = max(0, min(len(self.history), self._position + step))
        self.value = self.history[self._position] if self._position < len(self.history) else ""
        self.cursor_position = len(self.value)

    async def action_submit(self) -> None:
        text = self.value.strip()
        if not text:
            return
        if not self.history or self.history[-1] != text:
            self.history.append(text)
        self._position = len(self.history)
        self.value = ""
        self.post_message(self.Sent(text))
