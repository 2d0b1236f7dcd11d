"""The event hub: every event is attributed, redacted here (and only here), and handed to pluggable sinks.

Also the context variables that say whose handler is running, for which request, and where
its progress goes: the hub reads them to attribute an event that does not name its MAD.
"""
from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .events import REDACTED, Event, Record, looks_secret, orjson_text, to_json

current_mad: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_mad", default=None)
"""The MAD whose handler is running: its logs and events are attributed to it."""
current_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_correlation", default=None)
"""The correlation id of the request being handled: every event it causes carries it."""
current_progress: contextvars.ContextVar[Any] = contextvars.ContextVar("current_progress", default=None)
"""Where the running tool's progress goes (the MCP caller's progress token), if anywhere."""
current_receipt: contextvars.ContextVar[Any] = contextvars.ContextVar("current_receipt", default=None)
"""The distributed inbox entry being handled: its replies are sent with its acknowledgement."""
before_waiting: contextvars.ContextVar[Any] = contextvars.ContextVar("before_waiting", default=None)
"""Called by a handler about to wait on another MAD (a tool call, a question, the LLM, a secret): a group of
inbox entries handled before it commits then, so their answers never wait on it (see supervisor's group commit)."""


def about_to_wait() -> None:
    """The running handler is about to wait on another MAD: let its group commit what it can first."""
    hook = before_waiting.get()
    if hook is not None:
        hook()


def _may_name_a_secret(text: str) -> bool:
    """False only when no part of the text could be a name that `looks_secret` flags.

    Every such name holds key, token, secret, pass, credential or auth, ignoring case.
    """
    low = text.lower() if text.isascii() else text.casefold().replace("\u0131", "i")  # re folds dotless i too
    return ("key" in low or "token" in low or "secret" in low or "pass" in low or "credential" in low
            or "auth" in low)


class EventSink(Protocol):
    """Receives every event; must not block (buffer and write elsewhere)."""

    def handle(self, event: Record) -> None: ...


class Redactor:
    """Replaces known secret values, and values under secret-looking keys, with [redacted]."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._encoded: tuple[str, ...] = ()
        """The secret values as they appear inside JSON strings."""

    def add(self, value: str) -> None:
        """Remember a secret value (at least 4 characters) so it is never written anywhere."""
        if not value or len(value) < 4:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
                self._encoded = tuple(to_json(v)[1:-1] for v in ordered)

    def add_environment(self, environ: dict[str, str]) -> None:
        """Remember the values of environment variables whose names look like keys or tokens."""
        for name, value in environ.items():
            if looks_secret(name):
                self.add(value)

    def text(self, text: str) -> str:
        """The text with every known secret value replaced."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)

    def value(self, value: Any, key: str | None = None) -> Any:
        """A deep copy of a JSON-able value with secrets replaced."""
        if key is not None and isinstance(value, str) and looks_secret(key) and value:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def payload(self, payload: dict[str, Any], *, names: bool = True) -> tuple[dict[str, Any], str | None]:
        """The payload redacted, and its JSON when nothing needed redacting (then the payload is not copied).

        The JSON is scanned instead of the structure: a value holding a known secret holds its
        JSON-escaped form, and a secret-looking key holds one of the secret words. `names=False`
        says the caller knows no key of the payload looks secret, so only values are looked for.
        """
        text = orjson_text(payload)
        if text is None:  # the standard library's text escapes names, so the scan could miss one
            return self.value(payload), None
        encoded = self._encoded
        if (names and _may_name_a_secret(text)) or (encoded and any(secret in text for secret in encoded)):
            return self.value(payload), None
        return payload, text


def mask_secret_arguments(payload: dict[str, Any], key: str, secret: frozenset[str]) -> dict[str, Any]:
    """The payload with the values of the secret arguments under `key` replaced (a shallow copy)."""
    arguments = payload.get(key)
    if not isinstance(arguments, dict):
        return payload
    masked = {name: (REDACTED if name in secret else value) for name, value in arguments.items()}
    return {**payload, key: masked}


class EventHub:
    """Fans every event out to its sinks, after redaction; a failing sink never stops the others."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.sinks: list[EventSink] = []
        self.sink_errors = 0
        self.counts: dict[str, int] = {}

    def add_sink(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: EventSink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)

    def emit(self, event: Event) -> Record | None:
        """Record one event; returns it as recorded (redacted) or None when nobody listens.

        A MAD left unnamed is the one whose handler runs now; the correlation id likewise.
        """
        kind = event.kind_name()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if not self.sinks:
            return None
        mad = event.mad if event.mad is not None else current_mad.get()
        correlation_id = event.correlation_id if event.correlation_id is not None else current_correlation.get()
        payload = event.payload()
        secret = event.secret_arguments()
        if secret is not None:
            payload = mask_secret_arguments(payload, *secret)
        clean, text = self.redactor.payload(payload)
        return self._fan_out(Record(kind, mad, event.conversation, correlation_id, clean, payload_json=text))

    def emit_message(self, message: Any, recipients: list[str]) -> Record | None:
        """Record a message put on the bus (the hottest event: its payload's keys are known)."""
        self.counts["message"] = self.counts.get("message", 0) + 1
        if not self.sinks:
            return None
        payload = {"message": message.to_dict(), "recipients": recipients}
        # a message's own fields are no secret-looking names; only the keys inside its data can be
        clean, text = self.redactor.payload(payload, names=message.data is not None)
        return self._fan_out(Record("message", message.sender, message.conversation,
                                    message.correlation_id or current_correlation.get(), clean, payload_json=text))

    def _fan_out(self, record: Record) -> Record:
        for sink in self.sinks:
            try:
                sink.handle(record)
            except Exception:  # a sink's fault must not reach the MAD that emitted
                self.sink_errors += 1
        return record


class ListSink:
    """Keeps records in a list: for tests and for short-lived commands."""

    def __init__(self, predicate: Callable[[Record], bool] | None = None) -> None:
        self.events: list[Record] = []
        self.predicate = predicate

    def handle(self, event: Record) -> None:
        if self.predicate is None or self.predicate(event):
            self.events.append(event)

    def of(self, kind: str) -> list[Record]:
        return [e for e in self.events if e.kind == kind]


class RedactingFilter(logging.Filter):
    """A logging filter that writes every record with secret values already replaced."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        return True
