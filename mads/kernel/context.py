"""What a MAD may reach: the bus, its own state, the LLM through Fiedler, secrets through Turing, a logger."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from .errors import MadError
from .events import current_progress
from .message import Message

if TYPE_CHECKING:
    from .ecosystem import Ecosystem
    from .llm.base import LLMResponse


class MADContext:
    """A MAD's narrow door to the ecosystem; it sees no UI and no other MAD's internals."""

    def __init__(self, ecosystem: Ecosystem, name: str) -> None:
        self._eco = ecosystem
        self.name = name
        self.log = logging.getLogger(f"mads.{name}")
        self._state: sqlite_utils.Database | None = None

    # configuration ---------------------------------------------------------
    @property
    def home(self) -> Path:
        """MAD_HOME: the folder of all MAD state."""
        return self._eco.config.home

    @property
    def config(self) -> Any:
        return self._eco.config

    # state -------------------------------------------------------------------
    @property
    def state(self) -> sqlite_utils.Database:
        """This MAD's own SQLite database, MAD_HOME/state/<mad>.db, migrations applied."""
        if self._state is None:
            self._state = open_state(self.home, self.name)
        return self._state

    def close_state(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    # events and services ---------------------------------------------------
    def emit(self, kind: str, **payload: Any) -> None:
        """Record an event attributed to this MAD."""
        self._eco.hub.emit(kind, self.name, **payload)

    def provide(self, service: str, provider: Any) -> None:
        """Offer a kernel service (Fiedler offers `llm`, Turing offers `secrets`)."""
        self._eco.services[service] = provider

    def redact(self, value: str) -> None:
        """Never write this value anywhere: bus records, events, logs."""
        self._eco.hub.redactor.add(value)

    async def llm(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                  model: str | None = None) -> LLMResponse:
        """One LLM completion, always through Fiedler, accounted to this MAD."""
        gateway = self._eco.services.get("llm")
        if gateway is None:
            raise MadError("no LLM gateway is running (Fiedler is not loaded)")
        response = await gateway.complete(self.name, messages, tools=tools, model=model)
        account = self._eco.runners[self.name].account if self.name in self._eco.runners else None
        if account is not None:
            account.llm_calls += 1
            account.tokens_in += response.input_tokens
            account.tokens_out += response.output_tokens
            account.cost += response.cost
        return response

    async def secret(self, name: str) -> str:
        """A secret's value, if Turing has granted it to this MAD; the read is audited."""
        keeper = self._eco.services.get("secrets")
        if keeper is None:
            raise MadError("no secrets keeper is running (Turing is not loaded)")
        return await keeper.reveal(name, self.name)

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[None]:
        """Run a coroutine as this MAD's background work: its CPU and logs are the MAD's, a crash is
        reported without stopping the MAD, and it is cancelled when the instance goes (restart,
        reload, stop). Use it instead of asyncio.create_task, whose tasks outlive a reload."""
        runner = self._eco.runners[self.name]
        return runner.spawn(coro, name or str(getattr(coro, "__name__", "background")))

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress of the running tool to its caller (an MCP client's progress bar), if it asked."""
        report = current_progress.get()
        if report is not None:
            await report(done, total, message)

    # the bus -----------------------------------------------------------------
    async def publish(self, message: Message) -> list[str]:
        return await self._eco.publish(message)

    async def send(self, content: str, conversation: str, **kw: Any) -> Message:
        """Publish a message from this MAD."""
        message = Message.create(conversation, self.name, content, **kw)
        await self._eco.publish(message)
        return message

    async def ask(self, content: str, conversation: str, timeout: float = 30.0) -> Message:
        """Publish a message and wait for the first reply to it."""
        message = Message.create(conversation, self.name, content)
        replies = await self._eco.exchange(message, timeout=timeout, expect=1)
        if not replies:
            raise MadError(f"no reply within {timeout:g} s")
        return replies[0]

    async def call(self, tool: str, **arguments: Any) -> Any:
        """Call any MAD's tool; this MAD's own tools run inline."""
        return await self._eco.call_tool(tool, arguments, caller=self.name)

    @property
    def conversations(self) -> Any:
        """The bus's conversations: create, get, join, leave (Rogers keeps them)."""
        return self._eco.bus

    def directory(self) -> list[dict[str, Any]]:
        """Every participant with its liveness, for Rogers."""
        return self._eco.directory()

    def statistics(self) -> dict[str, Any]:
        return self._eco.bus.statistics()

    # cognition ---------------------------------------------------------------
    async def think(self, message: Message) -> Message:
        """Run the message through this MAD's Thought Engine; returns the reply."""
        return await self._eco.thought_engine(self.name).reply(message)

    async def converse(self, prompt: str) -> dict[str, Any]:
        return await self._eco.thought_engine(self.name).converse(prompt)


def open_state(home: Path, name: str) -> sqlite_utils.Database:
    """Open MAD_HOME/state/<mad>.db in WAL mode, usable from the MAD's worker threads."""
    folder = home / "state"
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / f"{name}.db", check_same_thread=False, isolation_level=None)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return db
