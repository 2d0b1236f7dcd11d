"""Messages the workers post to the app: new journal rows, and the host's state."""
from __future__ import annotations

import threading
from typing import Any

from textual.message import Message


class JournalEvents(Message):
    """A batch of journal rows; the tail worker waits for `done` before reading more."""

    def __init__(self, events: list[dict[str, Any]], done: threading.Event) -> None:
        super().__init__()
        self.events = events
        self.done = done


class HostChanged(Message):
    """The ecosystem child changed state (starting, running, restarting, failed, stopped)."""

    def __init__(self, state: str, error: str | None) -> None:
        super().__init__()
        self.state = state
        self.error = error
