"""The main screen: status line, the MAD panes side by side, the composer and the footer."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from ..completion import Completer
from ..widgets.composer import Composer
from ..widgets.mad_pane import MadPane
from ..widgets.pane_deck import PaneDeck
from ..widgets.status_bar import StatusBar
from ..widgets.traffic_view import TrafficView
from .prompt import PromptScreen


class MainScreen(Screen[None]):
    """Every MAD side by side; the composer is focused at start."""

    BINDINGS = [
        *[Binding(str(n), f"zoom({n})", f"Zoom {n}", show=False) for n in range(1, 10)],
        *[Binding(f"alt+{n}", f"zoom({n})", f"Zoom {n}", show=False, priority=True) for n in range(1, 10)],
        Binding("left", "page(-1)", "Page", show=False),
        Binding("right", "page(1)", "Page", show=False),
        Binding("escape", "escape", "Cancel LLM call / composer", show=False),
        Binding("f3", "toggle_logs", "Logs"),
        Binding("f4", "reload_mad", "Reload MAD"),
        Binding("f6", "restart_mad", "Restart MAD"),
        Binding("b", "break_on", "Break", show=False),
        Binding("c", "held('continue')", "Continue held", show=False),
        Binding("e", "held('edit')", "Edit held", show=False),
        Binding("d", "held('drop')", "Drop held", show=False),
    ]

    def __init__(self, completer: Completer, default_mad: str = "fiedler") -> None:
        super().__init__()
        self.completer = completer
        self.default_mad = default_mad
        """Who answers prose addressed to nobody (the composer's hint says so)."""

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield PaneDeck(id="deck")
        yield Composer(self.completer, self.default_mad, id="composer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Composer).focus()

    @property
    def deck(self) -> PaneDeck:
        return self.query_one(PaneDeck)

    def focused_mad(self) -> str | None:
        """The MAD whose pane has focus (or the zoomed one)."""
        widget = self.focused
        while widget is not None:
            name = getattr(getattr(widget, "view", None), "name", None)
            if name:
                return name
            widget = widget.parent  # type: ignore[assignment]
        return self.deck.zoomed

    def action_zoom(self, number: int) -> None:
        name = self.deck.zoom(number)
        if name is not None and self.deck.zoomed == name:
            self.deck.panes[name].traffic.focus()

    def action_page(self, step: int) -> None:
        self.deck.turn_page(step)

    def action_focus_composer(self) -> None:
        self.query_one(Composer).focus()

    def action_escape(self) -> None:
        """On a pane whose MAD waits for the model: cancel that call (mad_cancel); elsewhere: to the composer."""
        pane = self.focused
        while pane is not None and not isinstance(pane, MadPane):
            pane = pane.parent  # type: ignore[assignment]
        if isinstance(pane, MadPane) and pane.view.in_flight:
            self.run_worker(self._call("mad_cancel", {"mad": pane.view.name}, f"cancelling {pane.view.name}'s "
                                       "LLM call"), group="cancel")
            return
        self.action_focus_composer()

    def action_toggle_logs(self) -> None:
        name = self.focused_mad()
        panes = [self.deck.panes[name]] if name in self.deck.panes else list(self.deck.panes.values())
        show = not panes[0].traffic.show_logs if panes else False
        for pane in panes:
            pane.traffic.show_logs = show
        self.notify(f"logs {'shown' if show else 'hidden'}" + (f" for {name}" if name else ""), timeout=2)

    def action_reload_mad(self) -> None:
        name = self.focused_mad()
        if name is None:
            self.notify("focus a MAD's pane first (tab, or a number key)", severity="warning")
            return
        self.app.reload_mad(name)  # type: ignore[attr-defined]

    async def action_restart_mad(self) -> None:
        name = self.focused_mad()
        if name is None:
            self.notify("focus a MAD's pane first (tab, or a number key)", severity="warning")
            return
        self.app.restart_mad(name)  # type: ignore[attr-defined]

    # breakpoints (keys of a focused pane) ---------------------------------------------
    def action_break_on(self) -> None:
        name = self.focused_mad()
        if name is None:
            self.notify("focus a MAD's pane first (tab, or a number key)", severity="warning")
            return

        def chosen(pattern: str | None) -> None:
            if pattern is not None:
                arguments = {"mad": name, **({"pattern": pattern} if pattern.strip() else {})}
                self.app.run_worker(self._call("mad_break", arguments, f"breakpoint on {name}"), group="break")

        self.app.push_screen(PromptScreen(f"break on messages to {name}",
                                          "a regex the text must match (empty: every message)"), chosen)

    def action_held(self, what: str) -> None:
        name = self.focused_mad()
        view = self.deck.panes[name].view if name in self.deck.panes else None
        if view is None or not view.held:
            self.notify(f"no message held for {name}" if name else "focus a MAD's pane first", severity="warning")
            return
        held_id, content = next(iter(view.held.items()))
        if what == "continue":
            self.app.run_worker(self._call("mad_continue", {"held_id": held_id}, f"{held_id} continued"),
                                group="break")
        elif what == "drop":
            self.app.run_worker(self._call("mad_drop", {"held_id": held_id}, f"{held_id} dropped"), group="break")
        else:
            def edited(text: str | None) -> None:
                if text is not None and text.strip():
                    self.app.run_worker(self._call("mad_continue", {"held_id": held_id, "content": text},
                                                   f"{held_id} continued, edited"), group="break")

            self.app.push_screen(PromptScreen(f"edit {held_id}, then continue", "the text to deliver", content),
                                 edited)

    async def _call(self, tool: str, arguments: dict[str, object], done: str) -> None:
        try:
            result = await self.app.call(tool, arguments)  # type: ignore[attr-defined]
        except Exception as exc:  # ToolCallError, HostUnavailable: one line
            self.notify(f"{tool}: {exc}", severity="error")
            return
        extra = f" ({result['id']})" if isinstance(result, dict) and "id" in result else ""
        self.notify(done + extra, timeout=3)

    def on_traffic_view_details(self, event: TrafficView.Details) -> None:
        from .message_view import MessageScreen

        line = event.line
        name = self.focused_mad() or ""
        self.app.push_screen(MessageScreen(f"{name} · #{line.seq} {line.kind} · esc back · y copy",
                                           line.detail or line.text))

    def on_descendant_focus(self) -> None:
        name = self.focused_mad()
        if name:
            self.deck.show_pane(name)
