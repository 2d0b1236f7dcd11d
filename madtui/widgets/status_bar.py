"""The top line: session, ecosystem state, events and process figures; a banner when the child is down."""
from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from ..timeline import Timeline


class StatusBar(Static):
    """One line of session facts; turns red with the last error while the ecosystem is down."""

    DEFAULT_CSS = "StatusBar { height: 1; width: 1fr; }"

    _shown: str | None = None

    def show(self, timeline: Timeline, host_state: str, host_error: str | None, restarts: int) -> None:
        process = timeline.process
        state = host_state if host_state != "running" else timeline.ecosystem_state
        session = timeline.session_id or "new session"
        text = f"[b]mad[/b] · {session} · {state} · {timeline.events} events"
        if process:  # figures come with the first sample; zeros before it would be made up
            rss = process.get("rss", 0) / (1024 * 1024)
            text += f" · cpu {process.get('cpu_percent', 0.0):.0f}% · rss {rss:.0f} MB"
        if restarts:
            text += f" · restarts {restarts}"
        thinking = timeline.calls_in_flight
        if thinking:
            text += f" · [b]{thinking} LLM call{'s' if thinking > 1 else ''} in flight[/b]"
        down = host_state in ("restarting", "failed")
        if down and host_error:
            verb = "stopped after repeated failures" if host_state == "failed" else "died; restarting"
            text = f"[b]ecosystem {verb}[/b]: {escape(host_error)}"
        elif host_state == "starting":
            text += " · starting the ecosystem…"
        self.set_class(down, "-down")
        if text != self._shown:  # a line of fixed size: a new text needs a repaint, never a layout
            self._shown = text
            self.update(text, layout=False)
