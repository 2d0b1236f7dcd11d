"""Events: everything that happens in the ecosystem, redacted and handed to pluggable sinks."""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

KINDS = (
    "session_start", "session_end", "message", "tool_call", "tool_result", "llm_call",
    "llm_result", "log", "state", "crash", "restart", "sample", "profile", "human_input",
    "external_call", "reload", "reload_failed", "stage", "blocked", "memory",
)

REDACTED = "[redacted]"

current_mad: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_mad", default=None)
"""The MAD whose handler is running: its logs and events are attributed to it."""
current_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_correlation", default=None)
"""The correlation id of the request being handled: every event it causes carries it."""
current_progress: contextvars.ContextVar[Any] = contextvars.ContextVar("current_progress", default=None)
"""Where the running tool's progress goes (the MCP caller's progress token), if anywhere."""
_SECRET_NAME = re.compile(
    r"(?i)(api[_-]?key|(?:^|[_-])key(?:$|[_-])|token|secret|passw(?:or)?d|passphrase|private[_-]?key"
    r"|credential|authorization|(?:^|[_-])auth(?:$|[_-]))"
)


def looks_secret(name: str) -> bool:
    """True for names like OPENAI_API_KEY, token, db_password: their values are never recorded."""
    return bool(_SECRET_NAME.search(name))


@dataclass(slots=True)
class Event:
    """One thing that happened: kind, who, where, and a JSON-able payload."""

    kind: str
    mad: str | None = None
    conversation: str | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    wall: float = field(default_factory=time.time)
    mono: float = field(default_factory=time.monotonic)
    payload_json: str | None = None
    """The payload as compact JSON, taken when the event was emitted (None: serialise `payload`)."""


_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str, separators=(",", ":"), check_circular=False)
_dumps = orjson.dumps
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


def _stdlib_json(value: Any) -> str:
    return _ENCODER.encode(value)


def _orjson(value: Any) -> str | None:
    """The value as orjson writes it, or None where orjson refuses it."""
    try:
        return _dumps(value, default=str).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        try:  # keys that are not strings need orjson's slower option
            return _dumps(value, default=str, option=_NON_STR_KEYS).decode()
        except TypeError:
            return None


def to_json(value: Any) -> str:
    """Compact JSON of a value, non-ASCII kept, anything else as its str (the journal's encoding).

    orjson writes it (every event is serialised once, on the emitting thread, so its speed is the
    journal's); what orjson refuses (integers beyond 64 bits, lone surrogates, very deep nesting)
    the standard library writes, escaping every non-ASCII character (so a lone surrogate still
    makes valid UTF-8 for SQLite).
    """
    text = _orjson(value)
    return text if text is not None else _stdlib_json(value)


def _may_name_a_secret(text: str) -> bool:
    """False only when no part of the text could be a name that `looks_secret` flags.

    Every such name holds key, token, secret, pass, credential or auth, ignoring case.
    """
    low = text.lower() if text.isascii() else text.casefold().replace("\u0131", "i")  # re folds dotless i too
    return ("key" in low or "token" in low or "secret" in low or "pass" in low or "credential" in low
            or "auth" in low)


class EventSink(Protocol):
    """Receives every event; must not block (buffer and write elsewhere)."""

    def handle(self, event: Event) -> None: ...


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
        text = _orjson(payload)
        if text is None:  # the standard library's text escapes names, so the scan could miss one
            return self.value(payload), None
        encoded = self._encoded
        if (names and _may_name_a_secret(text)) or (encoded and any(secret in text for secret in encoded)):
            return self.value(payload), None
        return payload, text


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

    def emit(
        self,
        kind: str,
        mad: str | None = None,
        *,
        conversation: str | None = None,
        correlation_id: str | None = None,
        **payload: Any,
    ) -> Event | None:
        """Record one event; returns it (redacted) or None when nobody listens."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if not self.sinks:
            return None
        if mad is None:
            mad = current_mad.get()
        if correlation_id is None:
            correlation_id = current_correlation.get()
        clean, text = self.redactor.payload(payload)
        return self._fan_out(Event(kind, mad, conversation, correlation_id, clean, payload_json=text))


    def emit_message(self, message: Any, recipients: list[str]) -> Event | None:
        """Record a message put on the bus (the hottest event: its payload's keys are known)."""
        self.counts["message"] = self.counts.get("message", 0) + 1
        if not self.sinks:
            return None
        payload = {"message": message.to_dict(), "recipients": recipients}
        # a message's own fields are no secret-looking names; only the keys inside its data can be
        clean, text = self.redactor.payload(payload, names=message.data is not None)
        return self._fan_out(Event("message", message.sender, message.conversation,
                                   message.correlation_id or current_correlation.get(), clean, payload_json=text))

    def _fan_out(self, event: Event) -> Event:
        for sink in self.sinks:
            try:
                sink.handle(event)
            except Exception:  # a sink's fault must not reach the MAD that emitted
                self.sink_errors += 1
        return event


class ListSink:
    """Keeps events in a list: for tests and for short-lived commands."""

    def __init__(self, predicate: Callable[[Event], bool] | None = None) -> None:
        self.events: list[Event] = []
        self.predicate = predicate

    def handle(self, event: Event) -> None:
        if self.predicate is None or self.predicate(event):
            self.events.append(event)

    def of(self, kind: str) -> list[Event]:
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
