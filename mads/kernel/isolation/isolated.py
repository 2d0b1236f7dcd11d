"""An isolated MAD as its runner sees it: an instance whose every handler runs in the MAD's own process.

The runner drives it exactly as an in-process instance (mailbox, order, supervision), and it
serves the process's calls back into the core through the MAD's core context, enforcing who
is asking: the process publishes only as itself and reads only the secrets granted to it.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from ..errors import MadError
from ..events import Log, from_dict
from ..hub import current_correlation, current_progress
from ..message import Message
from .port import Placement, Port

if TYPE_CHECKING:
    from ..context import CoreContext
    from ..mad import MAD, ToolSpec

LOAD_SECONDS = 120.0
"""How long loading a module (imports, migrations, self-check) may take in the process."""
REFUSED_PREFIXES = ("turing_",)
"""Tools an isolated MAD may not call: the secrets keeper's own (it would grant itself secrets)."""


class IsolatedMAD:
    """Stands in the core for an instance that lives in a child process."""

    def __init__(self, cls: type[MAD], ctx: CoreContext, placement: Placement,
                 on_death: Callable[[str], Awaitable[None]]) -> None:
        self.cls = cls
        self.ctx = ctx
        self.name = cls.name
        self.placement = placement
        self._on_death = on_death
        self.port: Port | None = None
        self.pid: int | None = None
        self.ready_seconds: float | None = None
        """From spawn to the MAD loaded and started in its process."""
        self._inflight: dict[str, Message] = {}
        """Messages being handled in the process, by id: its `think` gets the original (real command arguments)."""

    # life ----------------------------------------------------------------------
    async def prepare(self, check: bool = False) -> None:
        """Start the process and load the module there: its migrations run, and its self_check for a reload."""
        path, source = self.cls.__mad_source__  # type: ignore[attr-defined]
        port = Port(self.name, self.placement, self._serve, self._notice, self._output, self._died)
        self.port = port
        await port.open()
        try:
            await port.request("load", {"path": path, "source": source, "check": check}, timeout=LOAD_SECONDS)
        except BaseException:
            await port.close()
            raise
        self.pid = port.find_pid()

    async def on_start(self) -> None:
        if self.port is None:
            await self.prepare()
        assert self.port is not None
        await self.port.request("start", {}, timeout=LOAD_SECONDS)
        self.ready_seconds = time.perf_counter() - self.port.started

    async def on_stop(self) -> None:
        if self.port is not None:
            await self.port.close()

    async def _died(self, cause: str) -> None:
        """The process ended with no call waiting on it (a background task, a limit): its runner restarts it."""
        if self.port is not None and not self.port.closing:
            await self._on_death(cause)

    # handlers --------------------------------------------------------------------
    def _port(self) -> Port:
        if self.port is None:
            raise MadError(f"{self.name}'s process is not running")
        return self.port

    async def on_message(self, message: Message, addressed: bool) -> None:
        self._inflight[message.id] = message
        try:
            await self._port().request("message", {"message": message.to_dict(), "addressed": addressed,
                                                   "correlation": message.correlation_id})
        finally:
            self._inflight.pop(message.id, None)

    async def on_observe(self, message: Message, conversation: dict[str, Any]) -> None:
        await self._port().request("observe", {"message": message.to_dict(), "conversation": conversation,
                                               "correlation": message.correlation_id})

    async def invoke_tool(self, spec: ToolSpec, kwargs: dict[str, Any]) -> Any:
        """Run one of the MAD's tools in its process; the caller's progress reports come back."""
        port = self._port()
        return await port.request("tool", {"tool": spec.name, "arguments": to_jsonable_python(kwargs, fallback=str),
                                           "correlation": current_correlation.get()},
                                  progress=current_progress.get())

    # the process's calls into the core -------------------------------------------
    async def _serve(self, method: str, params: dict[str, Any], request_id: int, parent: int | None) -> Any:
        ctx = self.ctx
        if method == "publish":
            message = Message.from_dict(params["message"])
            if message.sender != self.name:
                raise MadError(f"{self.name} cannot publish as @{message.sender}")
            return await ctx.publish(message)
        if method == "ask":
            reply = await ctx.ask(str(params["content"]), str(params["conversation"]), float(params.get("timeout", 30)))
            return reply.to_dict()
        if method == "call":
            tool = str(params["tool"])
            if tool.startswith(REFUSED_PREFIXES):
                raise MadError(f"{self.name} runs isolated and may not call {tool}: a person grants secrets")
            return await ctx.call(tool, **(params.get("arguments") or {}))
        if method == "llm":
            response = await ctx.llm(params["messages"], params.get("tools"), params.get("model"))
            return response.to_dict()
        if method == "secret":
            return await ctx.secret(str(params["name"]))
        if method == "think":
            data = params["message"]
            message = self._inflight.get(data.get("id")) or Message.from_dict(data)
            return (await ctx.think(message)).to_dict()
        if method == "converse":
            return await ctx.converse(str(params["prompt"]))
        if method == "create_conversation":
            return await ctx.create_conversation(**params)
        if method in ("get_conversation", "list_conversations", "join", "leave", "directory", "bus_statistics"):
            return await getattr(ctx, method)(**params)
        raise MadError(f"unknown request {method!r}")

    def _notice(self, method: str, params: dict[str, Any]) -> None:
        if method == "emit":
            try:
                self.ctx.emit(from_dict(params))
            except (ValueError, MadError) as exc:  # a malformed or forbidden event is dropped, not fatal
                self.ctx.log.warning("%s sent an event that was refused: %s", self.name, exc)
        elif method == "redact":
            self.ctx.redact(str(params.get("value", "")))
        elif method == "fatal" and self.port is not None and self.port.cause is None:
            self.port.cause = str(params.get("cause"))

    def _output(self, stream: str, text: str) -> None:
        self.ctx.emit(Log(level=stream, logger=stream, message=text))
