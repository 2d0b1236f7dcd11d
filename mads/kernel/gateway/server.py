"""The MCP gateway: every MAD tool, plus the admin tools, served by one MCPServer (SDK v2).

MAD tools keep their own JSON schemas and validation (one-line errors); an unknown tool
is a protocol error; every external call is recorded as an `external_call` event.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp import MCPError
from mcp.server import MCPServer, NotificationOptions
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError as ToolFailure
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import func_metadata
from mcp.shared.subscriptions import ToolsListChanged
from mcp.types import CallToolResult, TextContent

from pydantic import ValidationError

from ..errors import MadError
from ..events import ExternalCall
from ..schema import first_error
from ..mad import ToolSpec
from ..supervisor import one_line

if TYPE_CHECKING:
    from ..ecosystem import Ecosystem

INVALID_PARAMS = -32602
HEARTBEAT_SECONDS = 1.0


def _placeholder() -> None:
    """Stands in for a MAD tool's function: the gateway calls the ecosystem instead."""


def result_of(value: Any, *, error: bool = False) -> CallToolResult:
    """A tool result as MCP content: JSON text, with structured content for objects."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2, default=str)
    structured = value if isinstance(value, dict) and not error else None
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured,
                          is_error=error)


class MadTool(Tool):
    """A MAD tool as the MCP server lists and runs it."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        gateway: Gateway = context.mcp_server
        return await gateway.run_mad_tool(self.name, arguments, context)


def mad_tool(spec: ToolSpec) -> MadTool:
    return MadTool(fn=_placeholder, name=spec.name, title=None, description=spec.description,
                   parameters=spec.input_schema, fn_metadata=func_metadata(_placeholder, structured_output=False),
                   is_async=True, context_kwarg=None, annotations=None)


class Gateway(MCPServer):
    """One MCP server over one ecosystem."""

    def __init__(self, eco: Ecosystem, *, client: str = "mcp") -> None:
        super().__init__(name="mad", instructions="Every tool of every MAD in this ecosystem, and its admin tools.",
                         tools=[mad_tool(spec) for spec in eco.tools().values()], log_level="WARNING")
        self.eco = eco
        self.client = client
        self._mad_tools = set(eco.tools())
        # Every transport takes the server's default initialization options, which say the tool list
        # never changes; it does (hot reload), and clients are told, so the handshake says so too.
        lowlevel = self._lowlevel_server
        lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            type(lowlevel).create_initialization_options, lowlevel, NotificationOptions(tools_changed=True))
        self._sessions: dict[int, Any] = {}
        """One session per client connection that has talked to us, to tell of tool changes."""
        self._add_admin_tools()
        eco.tools_listeners.append(self.sync_tools)

    async def _handle_list_tools(self, ctx: Any, params: Any) -> Any:
        self._remember(ctx)
        return await super()._handle_list_tools(ctx, params)

    def _remember(self, ctx: Any) -> None:
        session = getattr(ctx, "session", None)
        if session is not None:
            connection = getattr(session, "_connection", session)  # sessions are per request; tell each client once
            self._sessions[id(connection)] = session

    async def sync_tools(self) -> None:
        """Make the served tools match the ecosystem's (after a reload) and tell clients the list changed."""
        current = self.eco.tools()
        changed = False
        for name in self._mad_tools - set(current):
            self.remove_tool(name)
            changed = True
        for name, spec in current.items():
            served = self._tool_manager.get_tool(name)
            if served is None or served.parameters != spec.input_schema or served.description != spec.description:
                self._tool_manager._tools[name] = mad_tool(spec)  # the SDK offers add_tool for functions only
                changed = True
        self._mad_tools = set(current)
        if changed:
            await self._subscriptions.publish(ToolsListChanged())
            for key, session in list(self._sessions.items()):
                try:
                    await session.send_tool_list_changed()
                except Exception as exc:  # a client that went away
                    self._sessions.pop(key, None)
                    logging.getLogger("mads.kernel").debug("tools/list_changed not delivered: %s", exc)

    # MAD tools -------------------------------------------------------------
    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        started = time.perf_counter()
        if context is not None:
            self._remember(getattr(context, "request_context", None))
        if self._tool_manager.get_tool(name) is None:  # recorded by argument names only: no schema says what is secret
            self._record(name, dict.fromkeys(arguments or {}), started, error=f"unknown tool {name!r}")
            raise MCPError(INVALID_PARAMS, f"unknown tool {name!r}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolFailure as exc:
            if isinstance(exc.__cause__, ValidationError):  # one line, like the MAD tools' own
                error = f"{name}: {first_error(exc.__cause__)}"
                self._record(name, arguments, started, error=error)  # admin tools reject before recording
                raise ToolFailure(error) from exc.__cause__
            text = str(exc).removeprefix(f"Error executing tool {name}: ")
            raise ToolFailure(f"{name}: {text}".splitlines()[0]) from exc

    async def run_mad_tool(self, name: str, arguments: dict[str, Any], context: Any) -> CallToolResult:
        """Run one MAD tool for an external client, with progress, recorded as an external_call."""
        eco = self.eco
        spec = eco.tool(name)
        given = arguments if isinstance(arguments, dict) else {}
        eco.learn_secrets(spec, given)
        secret = spec.secret_params
        started = time.perf_counter()

        async def progress(done: float, total: float | None = None, message: str | None = None) -> None:
            await report(context, done, total, message)

        heartbeat = asyncio.create_task(self._heartbeat(context, name)) if spec.long_running else None
        try:
            value = await eco.call_tool(name, arguments, caller=self.client, progress=progress)
        except MadError as exc:
            self._record(name, given, started, error=one_line(exc), secret_params=secret)
            return result_of(one_line(exc), error=True)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        self._record(name, given, started, result=value, secret_params=secret)
        return result_of(value)

    async def _heartbeat(self, context: Any, name: str) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            elapsed = time.monotonic() - started
            await report(context, elapsed, None, f"{name} running for {elapsed:.0f} s")

    def _record(self, tool: str, arguments: dict[str, Any], started: float, *, result: Any = None,
                error: str | None = None, secret_params: frozenset[str] = frozenset()) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if error is None:
            event = ExternalCall(tool=tool, client=self.client, arguments=arguments, ok=True, duration_ms=duration_ms,
                                 result=result, secret_params=secret_params)
        else:
            event = ExternalCall(tool=tool, client=self.client, arguments=arguments, ok=False, duration_ms=duration_ms,
                                 error=error, secret_params=secret_params)
        self.eco.hub.emit(event)

    # admin tools -------------------------------------------------------------
    def _add_admin_tools(self) -> None:
        eco = self.eco
        gateway = self

        @self.tool()
        async def mad_status() -> dict[str, Any]:
            """Every MAD: state, module version hash, mailbox, counters and stage figures."""
            started = time.perf_counter()
            status = eco.status()
            gateway._record("mad_status", {}, started, result={"mads": list(status["mads"])})
            return status

        @self.tool()
        async def mad_send(content: str, conversation: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
            """Send a message from @human onto the bus; returns the replies it caused."""
            started = time.perf_counter()
            try:
                message, replies = await eco.send(content, conversation=conversation, timeout=timeout)
            except MadError as exc:
                gateway._record("mad_send", {"content": content, "conversation": conversation}, started,
                                error=one_line(exc))
                raise ToolFailure(one_line(exc)) from None
            result = {"message": message.to_dict(), "replies": [r.to_dict() for r in replies]}
            gateway._record("mad_send", {"content": message.content, "conversation": conversation}, started,
                            result={"replies": len(replies)})
            return result

        @self.tool()
        async def mad_restart_mad(mad: str) -> dict[str, Any]:
            """Restart one MAD (a FAILED one too), keeping its mailbox and state."""
            started = time.perf_counter()
            try:
                status = await eco.restart_mad(mad)
            except MadError as exc:
                gateway._record("mad_restart_mad", {"mad": mad}, started, error=one_line(exc))
                raise ToolFailure(one_line(exc)) from None
            gateway._record("mad_restart_mad", {"mad": mad}, started, result={"state": status["state"]})
            return status

        @self.tool()
        async def mad_reload(mad: str) -> dict[str, Any]:
            """Reload a MAD's module from its file now (the new version serves on the same mailbox)."""
            started = time.perf_counter()
            try:
                result = await eco.reloader.reload_mad(mad)
            except MadError as exc:
                gateway._record("mad_reload", {"mad": mad}, started, error=one_line(exc))
                raise ToolFailure(one_line(exc)) from None
            gateway._record("mad_reload", {"mad": mad}, started, result=result)
            if not result.get("ok"):
                raise ToolFailure(result.get("error", "reload failed"))
            return result

        async def breaking(name: str, arguments: dict[str, Any], act: Callable[[], Any]) -> Any:
            """Run an admin action (breakpoints, cancel); recorded as an external call, a MadError one line to the client."""
            started = time.perf_counter()
            try:
                result = act()
                if inspect.isawaitable(result):
                    result = await result
            except MadError as exc:
                gateway._record(name, arguments, started, error=one_line(exc))
                raise ToolFailure(one_line(exc)) from None
            gateway._record(name, arguments, started, result=result)
            return result

        @self.tool()
        async def mad_break(mad: str | None = None, sender: str | None = None, conversation: str | None = None,
                            tag: str | None = None, tool: str | None = None,
                            pattern: str | None = None) -> dict[str, Any]:
            """Hold matching messages before delivery (only their conversation waits); every field given must match:
            the recipient MAD, the sender, the conversation, a tag, a command's tool, a regex on the content."""
            arguments = {k: v for k, v in {"mad": mad, "sender": sender, "conversation": conversation, "tag": tag,
                                           "tool": tool, "pattern": pattern}.items() if v is not None}
            return await breaking("mad_break", arguments, lambda: {"id": eco.breaks.add(**arguments).id})

        @self.tool()
        async def mad_breakpoints() -> dict[str, Any]:
            """The breakpoints, and the messages held (each with its held_id; those waiting behind another too)."""
            return eco.breaks.listing()

        @self.tool()
        async def mad_continue(held_id: str, content: str | None = None, step: bool = False) -> dict[str, Any]:
            """Deliver a held message (its text replaced by `content`, if given); with `step`, hold the next
            message of its conversation whatever it is."""
            return await breaking("mad_continue", {"held_id": held_id, "content": content, "step": step},
                                        lambda: eco.breaks.resume(held_id, content, step=step))

        @self.tool()
        async def mad_drop(held_id: str) -> dict[str, Any]:
            """Drop a held message: it is never delivered."""
            return await breaking("mad_drop", {"held_id": held_id}, lambda: eco.breaks.drop(held_id))

        @self.tool()
        async def mad_unbreak(id: str) -> dict[str, Any]:  # noqa: A002 - the name the issue gives
            """Remove a breakpoint (what it holds now stays held until continued or dropped)."""
            return await breaking("mad_unbreak", {"id": id}, lambda: (eco.breaks.remove(id), {"removed": id})[1])

        @self.tool()
        async def mad_cancel(mad: str | None = None) -> dict[str, Any]:
            """Cancel the LLM calls in flight of a MAD (every MAD's when none is named), down to the HTTP request;
            each caller is answered `#error cancelled`."""
            return await breaking("mad_cancel", {"mad": mad}, lambda: eco.cancel_llm(mad))

        @self.tool()
        async def mad_pause() -> dict[str, Any]:
            """Pause the ecosystem: MADs stop taking work (messages queue up)."""
            eco.pause()
            gateway._record("mad_pause", {}, time.perf_counter(), result={"paused": True})
            return {"paused": True}

        @self.tool()
        async def mad_resume() -> dict[str, Any]:
            """Resume the ecosystem after mad_pause."""
            eco.resume()
            gateway._record("mad_resume", {}, time.perf_counter(), result={"paused": False})
            return {"paused": False}

        async def measured(name: str, measure: Callable[..., Awaitable[dict[str, Any]]], seconds: float,
                           ctx: Context | None, summary: Callable[[dict[str, Any]], dict[str, Any]]
                           ) -> dict[str, Any]:
            """Run a timed measurement with progress to the caller; recorded as an external call."""
            started = time.perf_counter()

            async def progress(done: float, total: float | None, message: str | None) -> None:
                await report(ctx, done, total, message)

            try:
                result = await measure(eco, seconds, progress)
            except MadError as exc:
                gateway._record(name, {"seconds": seconds}, started, error=one_line(exc))
                raise ToolFailure(one_line(exc)) from None
            gateway._record(name, {"seconds": seconds}, started, result=summary(result))
            return result

        @self.tool()
        async def mad_profile(seconds: float = 5.0, ctx: Context | None = None) -> dict[str, Any]:
            """Sample the ecosystem with py-spy for some seconds; top functions per MAD (kernel time as kernel)."""
            from ..resources import profile

            return await measured("mad_profile", profile, seconds, ctx,
                                  lambda r: {"samples": r.get("samples"), "mads": list(r.get("mads", {}))})

        @self.tool()
        async def mad_memory(seconds: float = 5.0, ctx: Context | None = None) -> dict[str, Any]:
            """Trace allocations for some seconds; the bytes each MAD still holds and where it allocated them."""
            from ..resources import memory

            return await measured("mad_memory", memory, seconds, ctx,
                                  lambda r: {"bytes": r.get("bytes"), "mads": list(r.get("mads", {}))})


async def report(context: Any, done: float, total: float | None, message: str | None) -> None:
    """Send a progress notification if the caller asked for progress; never fails the call."""
    if context is None:
        return
    try:
        await context.report_progress(done, total, message)
    except Exception as exc:  # a client that went away must not fail the tool
        import logging
        logging.getLogger("mads.kernel").debug("progress not delivered: %s", exc)
