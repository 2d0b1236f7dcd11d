"""Events: one small dataclass per kind of thing that happens in the ecosystem, and the record a sink gets.

A MAD or the kernel builds a typed event (`ToolCall(mad="horace", tool=..., ...)`) and hands it
to the hub, which fills in who and for which request, redacts it, and gives sinks a `Record`:
kind, MAD, conversation, correlation id and a JSON-able payload (the event's own fields). Being
plain data, an event crosses a process boundary as a dict and comes back unchanged
(`to_dict` / `from_dict`), which is how an isolated MAD's events reach the journal.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

REDACTED = "[redacted]"


class _Omitted:
    """The default of an optional field: left out of the payload (None would be recorded as null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT"

    def __reduce__(self) -> str:
        return "OMIT"


OMIT: Any = _Omitted()

_SECRET_NAME = re.compile(
    r"(?i)(api[_-]?key|(?:^|[_-])key(?:$|[_-])|token|secret|passw(?:or)?d|passphrase|private[_-]?key"
    r"|credential|authorization|(?:^|[_-])auth(?:$|[_-]))"
)


def looks_secret(name: str) -> bool:
    """True for names like OPENAI_API_KEY, token, db_password: their values are never recorded."""
    return bool(_SECRET_NAME.search(name))


# the events ----------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class Event:
    """Something that happened: to which MAD, in which conversation, for which request; the rest is its payload."""

    kind: ClassVar[str] = ""
    mad: str | None = None
    """The MAD it happened to (None: the hub takes the MAD whose handler is running, if any)."""
    conversation: str | None = None
    correlation_id: str | None = None

    def kind_name(self) -> str:
        return self.kind

    def payload(self) -> dict[str, Any]:
        """The event's own fields, omitted optional ones left out."""
        out: dict[str, Any] = {}
        for name in _payload_fields(type(self)):
            value = getattr(self, name)
            if value is not OMIT:
                out[name] = value
        return out

    def secret_arguments(self) -> tuple[str, frozenset[str]] | None:
        """(payload key of a dict of arguments, names of its secret ones): the hub masks their values."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The event as plain data, to cross a process boundary."""
        return {"kind": self.kind_name(), "mad": self.mad, "conversation": self.conversation,
                "correlation_id": self.correlation_id, "payload": self.payload()}


_ENVELOPE = frozenset(f.name for f in dataclasses.fields(Event))
_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}


def _payload_fields(cls: type) -> tuple[str, ...]:
    names = _PAYLOAD_FIELDS.get(cls)
    if names is None:
        names = _PAYLOAD_FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.name not in _ENVELOPE and not f.metadata.get("hidden"))
    return names


def _hidden(default: Any) -> Any:
    """A field the hub reads but never records."""
    return field(default=default, metadata={"hidden": True})


@dataclass(slots=True, kw_only=True)
class SessionStart(Event):
    kind: ClassVar[str] = "session_start"
    session_id: str
    command: str
    pid: int
    appending: bool
    mads: list[str]
    modules: dict[str, str]
    versions: dict[str, str] = OMIT
    """Each MAD's module hash (a MAD_PATH module's name does not say which MADs it holds)."""


@dataclass(slots=True, kw_only=True)
class SessionEnd(Event):
    kind: ClassVar[str] = "session_end"
    reason: str
    duration_s: float
    events: dict[str, int]


@dataclass(slots=True, kw_only=True)
class MessagePublished(Event):
    """A message put on the bus (the hub has a fast path for it: `EventHub.emit_message`)."""

    kind: ClassVar[str] = "message"
    message: dict[str, Any]
    recipients: list[str]


@dataclass(slots=True, kw_only=True)
class ToolCall(Event):
    kind: ClassVar[str] = "tool_call"
    tool: str
    caller: str
    arguments: dict[str, Any]
    secret_params: frozenset[str] = _hidden(frozenset())

    def secret_arguments(self) -> tuple[str, frozenset[str]] | None:
        return ("arguments", self.secret_params) if self.secret_params else None


@dataclass(slots=True, kw_only=True)
class ToolResult(Event):
    kind: ClassVar[str] = "tool_result"
    tool: str
    ok: bool
    result: Any = OMIT
    error: str = OMIT
    duration_ms: float = OMIT


@dataclass(slots=True, kw_only=True)
class LLMCall(Event):
    kind: ClassVar[str] = "llm_call"
    caller: str
    model: str
    messages: int
    tools: list[str]
    prompt: list[dict[str, Any]]
    context_tokens: int = OMIT
    """The prompt's size in tokens (estimated): what CET built for the model, as sent."""
    call: int = OMIT
    """This call's number in the gateway: its chunks, retries and result carry it."""


@dataclass(slots=True, kw_only=True)
class LLMResult(Event):
    kind: ClassVar[str] = "llm_result"
    caller: str
    model: str
    ok: bool
    error: str | None = OMIT
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    call: int = OMIT
    first_token_ms: float = OMIT
    """A streamed reply: from the request to its first piece of text."""
    tokens_per_s: float = OMIT
    """A streamed reply: output tokens a second after the first one."""
    chunks: int = OMIT
    """A streamed reply: how many pieces of text it came in."""
    retries: int = OMIT


@dataclass(slots=True, kw_only=True)
class LLMChunk(Event):
    """A piece of a streamed reply's text, as it arrived (replay shows the reply growing)."""

    kind: ClassVar[str] = "llm_chunk"
    caller: str
    call: int
    text: str
    n: int
    """Its number in the reply, from 1."""


@dataclass(slots=True, kw_only=True)
class LLMRetry(Event):
    """The provider refused for now (429, 5xx): the gateway waits, then asks again."""

    kind: ClassVar[str] = "llm_retry"
    caller: str
    call: int
    model: str
    error: str
    wait_s: float
    attempt: int
    """The attempt about to be made, from 2."""


@dataclass(slots=True, kw_only=True)
class LLMCancelled(Event):
    """A call cancelled before its answer (Esc on the pane, mad_cancel): the request was closed."""

    kind: ClassVar[str] = "llm_cancelled"
    caller: str
    call: int
    model: str
    elapsed_ms: float
    chunks: int = 0


@dataclass(slots=True, kw_only=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    level: str
    logger: str = OMIT
    message: str
    traceback: str = OMIT


@dataclass(slots=True, kw_only=True)
class State(Event):
    """A MAD's state changed (starting, running, restarting, paused, failed, retired), or the ecosystem's (mad None)."""

    kind: ClassVar[str] = "state"
    state: str
    reason: str = OMIT
    traceback: str = OMIT
    placement: str = OMIT
    pid: int = OMIT


@dataclass(slots=True, kw_only=True)
class Crash(Event):
    kind: ClassVar[str] = "crash"
    handler: str
    error: str
    traceback: str | None = OMIT
    background: bool = OMIT


@dataclass(slots=True, kw_only=True)
class Restart(Event):
    kind: ClassVar[str] = "restart"
    reason: str
    restarts: int
    backoff: float = OMIT


@dataclass(slots=True, kw_only=True)
class Sample(Event):
    kind: ClassVar[str] = "sample"
    interval_s: float
    process: dict[str, Any]
    mads: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class Profile(Event):
    kind: ClassVar[str] = "profile"
    samples: int
    mads: dict[str, Any]
    seconds: float
    processes: dict[str, Any] = OMIT


@dataclass(slots=True, kw_only=True)
class Memory(Event):
    kind: ClassVar[str] = "memory"
    bytes: int
    mads: dict[str, Any]
    seconds: float
    since: str
    tracing_overhead: int


@dataclass(slots=True, kw_only=True)
class HumanInput(Event):
    """A message or a tool call from the person at the keyboard (or an external client)."""

    kind: ClassVar[str] = "human_input"
    content: str = OMIT
    message_id: str = OMIT
    tool: str = OMIT
    arguments: dict[str, Any] = OMIT
    secret_params: frozenset[str] = _hidden(frozenset())

    def secret_arguments(self) -> tuple[str, frozenset[str]] | None:
        return ("arguments", self.secret_params) if self.secret_params else None


@dataclass(slots=True, kw_only=True)
class ExternalCall(Event):
    """A call from an MCP client, or a request the gateway refused."""

    kind: ClassVar[str] = "external_call"
    tool: str | None
    client: str
    arguments: dict[str, Any] = OMIT
    ok: bool
    duration_ms: float = OMIT
    result: Any = OMIT
    error: str = OMIT
    status: int = OMIT
    path: str | None = OMIT
    secret_params: frozenset[str] = _hidden(frozenset())

    def secret_arguments(self) -> tuple[str, frozenset[str]] | None:
        return ("arguments", self.secret_params) if self.secret_params else None


@dataclass(slots=True, kw_only=True)
class Reload(Event):
    kind: ClassVar[str] = "reload"
    action: str
    path: str
    old_hash: str | None
    new_hash: str | None
    duration_ms: float = OMIT


@dataclass(slots=True, kw_only=True)
class ReloadFailed(Event):
    kind: ClassVar[str] = "reload_failed"
    path: str
    error: str
    traceback: str | None = OMIT
    restart_needed: bool = OMIT


@dataclass(slots=True, kw_only=True)
class Stage(Event):
    """A Thought Engine stage answered a message."""

    kind: ClassVar[str] = "stage"
    stage: str
    ok: bool
    latency_ms: float
    llm_calls: int
    tokens: int
    tokens_avoided: int
    tool_calls: list[Any]


@dataclass(slots=True, kw_only=True)
class Blocked(Event):
    """The watchdog saw a handler hold the event loop."""

    kind: ClassVar[str] = "blocked"
    handler: str
    held_ms: float


@dataclass(slots=True, kw_only=True)
class BusLost(Event):
    """This process lost its connection to the distributed bus (Redis); it keeps trying with backoff."""

    kind: ClassVar[str] = "bus_lost"
    url: str
    error: str


@dataclass(slots=True, kw_only=True)
class BusBack(Event):
    """The distributed bus is reachable again."""

    kind: ClassVar[str] = "bus_back"
    url: str
    down_s: float


@dataclass(slots=True, kw_only=True)
class DeadLetter(Event):
    """An inbox entry delivered too many times, moved to the MAD's dead-letter stream."""

    kind: ClassVar[str] = "dead_letter"
    entry: str
    deliveries: int
    stream: str


@dataclass(slots=True, kw_only=True)
class BreakHit(Event):
    """A message held at a breakpoint before delivery (its conversation waits)."""

    kind: ClassVar[str] = "break_hit"
    held_id: str
    breakpoint: str
    message_id: str
    sender: str
    content: str
    mads: list[str] = field(default_factory=list)
    """The MADs it was on its way to."""


@dataclass(slots=True, kw_only=True)
class BreakContinue(Event):
    """A held message delivered: the text it had and the text delivered (the same unless edited)."""

    kind: ClassVar[str] = "break_continue"
    held_id: str
    message_id: str
    original: str
    delivered: str
    step: bool = False


@dataclass(slots=True, kw_only=True)
class BreakDrop(Event):
    """A held message dropped: never delivered."""

    kind: ClassVar[str] = "break_drop"
    held_id: str
    message_id: str
    content: str


@dataclass(slots=True, kw_only=True)
class Handled(Event):
    """A MAD finished handling a message or a tool call: the CPU it spent on it (its handler's steps, summed)."""

    kind: ClassVar[str] = "handled"
    handler: str
    cpu_ms: float
    wall_ms: float
    message_id: str | None = OMIT
    sender: str | None = OMIT
    tool: str | None = OMIT
    head: str = OMIT
    """The first line of the message (120 characters at most)."""


@dataclass(slots=True, kw_only=True)
class Regen(Event):
    """A step of `mad regen`: a candidate generated, a gate passed or failed, a module applied or rolled back."""

    kind: ClassVar[str] = "regen"
    step: str
    """generate, static, behaviour, report, apply or rollback."""
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Custom(Event):
    """An event of a MAD's own kind (Rogers' `conversation_created`); its data is the payload."""

    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def kind_name(self) -> str:
        return self.name

    def payload(self) -> dict[str, Any]:
        return dict(self.data)


EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in (
    SessionStart, SessionEnd, MessagePublished, ToolCall, ToolResult, LLMCall, LLMResult, LLMChunk, LLMRetry,
    LLMCancelled, Log, State, Crash,
    Restart, Sample, Profile, Memory, HumanInput, ExternalCall, Reload, ReloadFailed, Stage, Blocked, BusLost,
    BusBack, DeadLetter, Regen, Handled, BreakHit, BreakContinue, BreakDrop)}
KINDS = tuple(EVENT_TYPES)
"""Every kernel kind; a MAD's own kinds (Custom) are any other name."""


def from_dict(data: dict[str, Any]) -> Event:
    """An event back from `to_dict`; ValueError for a payload that does not fit its kind."""
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError("an event needs a kind")
    envelope = {k: data.get(k) for k in ("mad", "conversation", "correlation_id")}
    payload = data.get("payload") or {}
    if not isinstance(payload, dict):
        raise ValueError(f"the payload of a {kind} event is not an object")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return Custom(name=kind, data=payload, **envelope)
    try:
        return cls(**envelope, **payload)
    except TypeError as exc:
        raise ValueError(f"a {kind} event does not fit: {exc}") from None


# the record a sink gets ------------------------------------------------------------------
@dataclass(slots=True)
class Record:
    """One event as recorded: kind, who, where, and a JSON-able (already redacted) payload."""

    kind: str
    mad: str | None = None
    conversation: str | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    wall: float = field(default_factory=time.time)
    mono: float = field(default_factory=time.monotonic)
    payload_json: str | None = None
    """The payload as compact JSON, taken when the event was emitted (None: serialise `payload`)."""
    node: str | None = None
    """The process it happened in, in a distributed ecosystem (None: this one)."""
    code: str | None = None
    """The hash of the MAD's module that produced it, when it came from another process."""


# JSON ---------------------------------------------------------------------------------------
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str, separators=(",", ":"), check_circular=False)
_dumps = orjson.dumps
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


def _stdlib_json(value: Any) -> str:
    return _ENCODER.encode(value)


def orjson_text(value: Any) -> str | None:
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
    text = orjson_text(value)
    return text if text is not None else _stdlib_json(value)
