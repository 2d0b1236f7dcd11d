"""The context of an isolated MAD, in its own process: each call crosses the channel to the core.

Its own state is local (its SQLite file in its state folder); everything else (the bus, other
MADs' tools, the LLM through Fiedler, secrets through Turing, its Thought Engine) is served
by the core, which knows which MAD is asking and never takes the child's word for it.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import sqlite_utils

from ..background import Background
from ..context import event_of, open_state
from ..credentials import Credentials
from ..errors import MadError
from ..events import Crash, Event
from ..llm.base import LLMResponse
from ..message import Message
from .channel import Channel

current_request: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_request", default=None)
"""The core's request this task serves: calls to the core name it, so the core stops its clock meanwhile."""
current_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("child_correlation", default=None)


class ChildContext:
    """MADContext across the wall; what is not served (keys, kernel services) is refused."""

    def __init__(self, channel: Channel, name: str, home: Path) -> None:
        self._channel = channel
        self.name = name
        self.log = logging.getLogger(f"mads.{name}")
        self._home = home
        self._state: sqlite_utils.Database | None = None
        self.background = Background()

    @property
    def home(self) -> Path:
        return self._home

    @property
    def state(self) -> sqlite_utils.Database:
        if self._state is None:
            self._state = open_state(self._home, self.name)
        return self._state

    def close_state(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def _call(self, method: str, params: dict[str, Any]) -> Coroutine[Any, Any, Any]:
        return self._channel.request(method, params, parent=current_request.get())

    # events and services -------------------------------------------------------
    def emit(self, event: Event | str, /, **payload: Any) -> None:
        made = event_of(self.name, event, payload)
        if made.correlation_id is None:
            made.correlation_id = current_correlation.get()
        self._channel.notify("emit", made.to_dict())

    def redact(self, value: str) -> None:
        self._channel.notify("redact", {"value": value})

    def provide(self, service: str, provider: Any) -> None:
        raise MadError(f"{self.name} runs isolated and cannot offer the kernel service {service!r}")

    def credentials(self) -> Credentials:
        raise MadError(f"{self.name} runs isolated: no key ever reaches its process")

    async def llm(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                  model: str | None = None) -> LLMResponse:
        data = await self._call("llm", {"messages": messages, "tools": tools, "model": model})
        return LLMResponse.from_dict(data)

    async def secret(self, name: str) -> str:
        value: str = await self._call("secret", {"name": name})
        return value

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[None]:
        handler = f"{self.name}.{name or getattr(coro, '__name__', 'background')}"

        async def run() -> None:
            current_request.set(None)  # background work serves no request of the core's
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except MemoryError:
                raise
            except Exception as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
                self._channel.notify("emit", Crash(mad=self.name, handler=handler, error=error,
                                                   traceback=traceback.format_exc(), background=True).to_dict())
                self.log.error("%s crashed in %s: %s", self.name, handler, error)

        return self.background.start(run(), f"mad:{handler}")

    async def end_background(self) -> None:
        await self.background.end()

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        request = current_request.get()
        if request is not None:
            self._channel.notify("progress", {"request": request, "done": done, "total": total, "message": message})

    # the bus -------------------------------------------------------------------
    async def publish(self, message: Message) -> list[str]:
        recipients: list[str] = await self._call("publish", {"message": message.to_dict()})
        return recipients

    async def send(self, content: str, conversation: str, **kw: Any) -> Message:
        message = Message.create(conversation, self.name, content, **kw)
        await self.publish(message)
        return message

    async def ask(self, content: str, conversation: str, timeout: float = 30.0) -> Message:
        data = await self._call("ask", {"content": content, "conversation": conversation, "timeout": timeout})
        return Message.from_dict(data)

    async def call(self, tool: str, **arguments: Any) -> Any:
        return await self._call("call", {"tool": tool, "arguments": arguments})

    async def create_conversation(self, name: str, participants: list[str] | None = None,
                                  tags: list[str] | None = None, *, conversation_id: str | None = None,
                                  created: float | None = None, messages: int = 0) -> dict[str, Any]:
        conversation: dict[str, Any] = await self._call("create_conversation", {
            "name": name, "participants": participants, "tags": tags, "conversation_id": conversation_id,
            "created": created, "messages": messages})
        return conversation

    async def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        conversation: dict[str, Any] = await self._call("get_conversation", {"conversation_id": conversation_id})
        return conversation

    async def list_conversations(self) -> list[dict[str, Any]]:
        conversations: list[dict[str, Any]] = await self._call("list_conversations", {})
        return conversations

    async def join(self, conversation_id: str, participant: str) -> dict[str, Any]:
        conversation: dict[str, Any] = await self._call(
            "join", {"conversation_id": conversation_id, "participant": participant})
        return conversation

    async def leave(self, conversation_id: str, participant: str) -> dict[str, Any]:
        conversation: dict[str, Any] = await self._call(
            "leave", {"conversation_id": conversation_id, "participant": participant})
        return conversation

    async def directory(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._call("directory", {})
        return rows

    async def bus_statistics(self) -> dict[str, Any]:
        figures: dict[str, Any] = await self._call("bus_statistics", {})
        return figures

    # cognition -----------------------------------------------------------------
    async def think(self, message: Message) -> Message:
        return Message.from_dict(await self._call("think", {"message": message.to_dict()}))

    async def converse(self, prompt: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("converse", {"prompt": prompt})
        return answer
