"""What a MAD may reach: the bus, its own state, the LLM through Fiedler, secrets through Turing, a logger.

`MADContext` is the protocol a MAD is written against. The kernel serves it in-process
(`CoreContext`) or across a process wall (`mads.kernel.isolation.ChildContext`); the MAD's
module is the same page of Python either way. It exposes no environment, no configuration
object and no bus object: only the calls below.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlite_utils

from .credentials import Credentials, is_package_mad, keeper_part
from .errors import MadError
from .events import KINDS, Event, from_dict
from .hub import about_to_wait, current_progress
from .message import Message

if TYPE_CHECKING:
    from .bus import Bus
    from .cognition.engine import ThoughtEngine
    from .hub import EventHub
    from .llm.base import LLMResponse
    from .supervisor import MADRunner


class MADContext(Protocol):
    """A MAD's narrow door to the ecosystem; it sees no UI, no environment and no other MAD's internals."""

    name: str
    log: logging.Logger

    @property
    def home(self) -> Path:
        """MAD_HOME (an isolated MAD sees only its own state folder and the folders it declares)."""

    @property
    def state(self) -> sqlite_utils.Database:
        """This MAD's own SQLite database, migrations applied."""

    def emit(self, event: Event | str, /, **payload: Any) -> None:
        """Record an event attributed to this MAD: a typed one, or a kind of its own with its payload."""

    def redact(self, value: str) -> None:
        """Never write this value anywhere: bus records, events, logs."""

    async def llm(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                  model: str | None = None) -> LLMResponse:
        """One LLM completion, always through Fiedler, accounted to this MAD."""

    async def secret(self, name: str) -> str:
        """A secret's value, if Turing has granted it to this MAD; the read is audited."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[None]:
        """Run background work of this MAD's; it ends with the instance (restart, reload, stop)."""

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress of the running tool to its caller, if it asked."""

    async def publish(self, message: Message) -> list[str]:
        """Put a message of this MAD's on the bus; returns its recipients."""

    async def send(self, content: str, conversation: str, **kw: Any) -> Message:
        """Publish a message from this MAD."""

    async def ask(self, content: str, conversation: str, timeout: float = 30.0) -> Message:
        """Publish a message and wait for the first reply to it."""

    async def call(self, tool: str, **arguments: Any) -> Any:
        """Call any MAD's tool; this MAD's own tools run inline."""

    async def think(self, message: Message) -> Message:
        """Run a message through this MAD's Thought Engine; returns the reply."""

    async def converse(self, prompt: str) -> dict[str, Any]:
        """Run a prompt through this MAD's Thought Engine."""

    async def create_conversation(self, name: str, participants: list[str] | None = None,
                                  tags: list[str] | None = None, *, conversation_id: str | None = None,
                                  created: float | None = None, messages: int = 0) -> dict[str, Any]:
        """Open a conversation on the bus."""

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """A conversation as the bus has it; UsageError when there is none."""

    async def list_conversations(self) -> list[dict[str, Any]]:
        """Every conversation the bus has."""

    async def join(self, conversation_id: str, participant: str) -> dict[str, Any]:
        """Add a participant to a conversation."""

    async def leave(self, conversation_id: str, participant: str) -> dict[str, Any]:
        """Remove a participant from a conversation."""

    async def directory(self) -> list[dict[str, Any]]:
        """Every participant with its liveness."""

    async def bus_statistics(self) -> dict[str, Any]:
        """The bus's traffic figures."""

    def provide(self, service: str, provider: Any) -> None:
        """Offer a kernel service (Fiedler offers `llm`, Turing offers `secrets`); package keepers only."""

    def credentials(self) -> Credentials:
        """The keys this MAD keeps (Turing: the master key; Fiedler: the provider's); keepers only."""


class Kernel(Protocol):
    """What a CoreContext needs of the ecosystem that serves it."""

    hub: EventHub
    bus: Bus
    services: dict[str, Any]

    @property
    def home(self) -> Path: ...

    def runner(self, name: str) -> MADRunner: ...

    async def publish(self, message: Message) -> list[str]: ...

    async def exchange(self, message: Message, *, timeout: float, expect: int) -> list[Message]: ...

    async def call_tool(self, name: str, args: dict[str, Any] | None = None, *, caller: str = ...,
                        raw: bool = ..., correlation_id: str | None = ..., progress: Any = ...) -> Any: ...

    def thought_engine(self, mad: str) -> ThoughtEngine: ...

    def directory(self) -> list[dict[str, Any]]: ...

    def key_credentials(self) -> Credentials: ...


MAD_KINDS = frozenset({"log", "llm_call", "llm_result", "llm_chunk", "llm_retry", "llm_cancelled"})
"""The kernel kinds a MAD may emit itself; the others (session, state, crash, samples...) are the kernel's word."""


def event_of(mad: str, event: Event | str, payload: dict[str, Any]) -> Event:
    """A MAD's event, attributed to it: a typed one, a kernel kind by name, or a kind of its own."""
    kind = event.kind_name() if isinstance(event, Event) else event
    if kind in KINDS and kind not in MAD_KINDS:
        raise MadError(f"{kind!r} events are the kernel's own; a MAD may emit {', '.join(sorted(MAD_KINDS))} "
                       "or kinds of its own")
    if isinstance(event, str):
        if not event.strip():
            raise MadError("an event needs a kind")
        envelope: dict[str, Any] = {k: payload.pop(k) for k in ("conversation", "correlation_id") if k in payload}
        try:
            event = from_dict({"kind": event, "payload": payload, **envelope})
        except ValueError as exc:
            raise MadError(str(exc)) from None
    elif payload:
        raise MadError("give either a typed event or a kind with its payload, not both")
    event.mad = mad
    return event


class CoreContext:
    """The context of a MAD in the core process: every call goes straight to the ecosystem."""

    def __init__(self, kernel: Kernel, name: str) -> None:
        self._kernel = kernel
        self.name = name
        self.log = logging.getLogger(f"mads.{name}")
        self._state: sqlite_utils.Database | None = None

    @property
    def home(self) -> Path:
        return self._kernel.home

    # state -------------------------------------------------------------------
    @property
    def state(self) -> sqlite_utils.Database:
        if self._state is None:
            self._state = open_state(self.home, self.name)
        return self._state

    def close_state(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    # events and services -------------------------------------------------------
    def emit(self, event: Event | str, /, **payload: Any) -> None:
        self._kernel.hub.emit(event_of(self.name, event, payload))

    def provide(self, service: str, provider: Any) -> None:
        if not is_package_mad(self._kernel.runner(self.name).cls):
            raise MadError(f"{self.name} cannot offer the kernel service {service!r}: only package MADs do")
        self._kernel.services[service] = provider

    def credentials(self) -> Credentials:
        return keeper_part(self._kernel.key_credentials(), self._kernel.runner(self.name).cls)

    def redact(self, value: str) -> None:
        self._kernel.hub.redactor.add(value)

    async def llm(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                  model: str | None = None) -> LLMResponse:
        gateway = self._kernel.services.get("llm")
        if gateway is None:
            raise MadError("no LLM gateway is running (Fiedler is not loaded)")
        about_to_wait()
        response = await gateway.complete(self.name, messages, tools=tools, model=model)
        account = self._kernel.runner(self.name).account
        account.llm_calls += 1
        account.tokens_in += response.input_tokens
        account.tokens_out += response.output_tokens
        account.cost += response.cost
        return response

    async def secret(self, name: str) -> str:
        keeper = self._kernel.services.get("secrets")
        if keeper is None:
            raise MadError("no secrets keeper is running (Turing is not loaded)")
        about_to_wait()
        value: str = await keeper.reveal(name, self.name)
        return value

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[None]:
        """Run a coroutine as this MAD's background work: its CPU and logs are the MAD's, a crash is
        reported without stopping the MAD, and it is cancelled when the instance goes (restart,
        reload, stop). Use it instead of asyncio.create_task, whose tasks outlive a reload."""
        return self._kernel.runner(self.name).spawn(coro, name or str(getattr(coro, "__name__", "background")))

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        report = current_progress.get()
        if report is not None:
            await report(done, total, message)

    # the bus -------------------------------------------------------------------
    async def publish(self, message: Message) -> list[str]:
        return await self._kernel.publish(message)

    async def send(self, content: str, conversation: str, **kw: Any) -> Message:
        message = Message.create(conversation, self.name, content, **kw)
        await self._kernel.publish(message)
        return message

    async def ask(self, content: str, conversation: str, timeout: float = 30.0) -> Message:
        message = Message.create(conversation, self.name, content)
        replies = await self._kernel.exchange(message, timeout=timeout, expect=1)
        if not replies:
            raise MadError(f"no reply within {timeout:g} s")
        return replies[0]

    async def call(self, tool: str, **arguments: Any) -> Any:
        return await self._kernel.call_tool(tool, arguments, caller=self.name)

    async def create_conversation(self, name: str, participants: list[str] | None = None,
                                  tags: list[str] | None = None, *, conversation_id: str | None = None,
                                  created: float | None = None, messages: int = 0) -> dict[str, Any]:
        conv = await self._kernel.bus.create_conversation(name, participants, tags, conversation_id=conversation_id,
                                                          created=created, messages=messages)
        return conv.to_dict()

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        return (await self._kernel.bus.get_conversation(conversation_id)).to_dict()

    async def list_conversations(self) -> list[dict[str, Any]]:
        return [conv.to_dict() for conv in await self._kernel.bus.conversations()]

    async def join(self, conversation_id: str, participant: str) -> dict[str, Any]:
        return (await self._kernel.bus.join(conversation_id, participant)).to_dict()

    async def leave(self, conversation_id: str, participant: str) -> dict[str, Any]:
        return (await self._kernel.bus.leave(conversation_id, participant)).to_dict()

    async def directory(self) -> list[dict[str, Any]]:
        return self._kernel.directory()

    async def bus_statistics(self) -> dict[str, Any]:
        return self._kernel.bus.statistics()

    # cognition -----------------------------------------------------------------
    async def think(self, message: Message) -> Message:
        return await self._kernel.thought_engine(self.name).reply(message)

    async def converse(self, prompt: str) -> dict[str, Any]:
        return await self._kernel.thought_engine(self.name).converse(prompt)


def state_path(home: Path, name: str) -> Path:
    """MAD_HOME/state/<mad>/<mad>.db: each MAD's state in a folder of its own (an isolated MAD's whole view).

    A database left at the older MAD_HOME/state/<mad>.db (with its -wal and -shm) moves in.
    """
    folder = home / "state" / name
    path = folder / f"{name}.db"
    if not path.exists():
        older = home / "state" / f"{name}.db"
        if older.exists():
            folder.mkdir(parents=True, exist_ok=True)
            for suffix in ("-wal", "-shm", ""):
                part = older.with_name(older.name + suffix)
                if part.exists():
                    part.replace(folder / part.name)
    return path


def open_state(home: Path, name: str) -> sqlite_utils.Database:
    """Open a MAD's state database in WAL mode, usable from the MAD's worker threads."""
    path = state_path(home, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return db
