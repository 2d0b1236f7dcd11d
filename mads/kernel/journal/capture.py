"""Python logging and stray stderr/stdout writes inside the ecosystem become `log` events.

Each is attributed to the MAD whose handler was running (a context variable), so nothing
but the MCP protocol ever reaches stdout.
"""
from __future__ import annotations

import io
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from ..events import OMIT, Log
from ..hub import EventHub, current_mad


class EventLogHandler(logging.Handler):
    """Turns log records into `log` events attributed to the running MAD."""

    def __init__(self, hub: EventHub, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.hub = hub
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):  # a sink that logs must not loop back here
            return
        self._local.busy = True
        try:
            mad = current_mad.get()
            if mad is None and record.name.startswith("mads.") and record.name != "mads.kernel":
                mad = record.name.split(".")[1]
            tb = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else OMIT
            self.hub.emit(Log(mad=mad or "kernel", level=record.levelname.lower(), logger=record.name,
                              message=record.getMessage(), traceback=tb))
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False


class StreamToEvents(io.TextIOBase):
    """A text stream whose complete lines become `log` events (level = the stream's name)."""

    def __init__(self, hub: EventHub, name: str) -> None:
        super().__init__()
        self.hub = hub
        self.name_ = name
        self._buffer = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self.hub.emit(Log(mad=current_mad.get() or "kernel", level=self.name_, logger=self.name_,
                                  message=line))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest.strip():
            self.hub.emit(Log(mad=current_mad.get() or "kernel", level=self.name_, logger=self.name_, message=rest))


@contextmanager
def capture_output(hub: EventHub, *, stdout: bool = False) -> Iterator[None]:
    """While the ecosystem runs: logging to events, and stderr (and stdout, for MCP over stdio) too."""
    handler = EventLogHandler(hub)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
        for other in root.handlers:  # the console keeps showing only what it showed before
            if other is not handler and other.level == logging.NOTSET:
                other.setLevel(old_level or logging.WARNING)
    saved: list[tuple[str, TextIO]] = [("stderr", sys.stderr)]
    sys.stderr = StreamToEvents(hub, "stderr")  # type: ignore[assignment]
    if stdout:
        saved.append(("stdout", sys.stdout))
        sys.stdout = StreamToEvents(hub, "stdout")  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, stream in saved:
            getattr(sys, name).flush()
            setattr(sys, name, stream)
        root.removeHandler(handler)
        root.setLevel(old_level)
