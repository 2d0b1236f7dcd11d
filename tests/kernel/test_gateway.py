"""The MCP gateway in memory: every MAD tool and the admin tools, one-line errors, progress."""
from __future__ import annotations

import asyncio
import json

import pytest
from mcp import Client, MCPError

from mads.kernel import MAD, tool
from mads.kernel.gateway import Gateway

ADMIN_TOOLS = {"mad_status", "mad_send", "mad_restart_mad", "mad_pause", "mad_resume", "mad_profile", "mad_memory", "mad_reload",
               "mad_break", "mad_breakpoints", "mad_continue", "mad_drop", "mad_unbreak", "mad_cancel"}


class Probe(MAD):
    """Answers pings."""

    @tool
    async def ping(self, text: str, times: int = 1) -> dict:
        """Echo the text."""
        return {"echo": text * times}

    @tool(long_running=True)
    async def slow(self, steps: int = 3) -> str:
        """Work in steps, reporting progress."""
        for step in range(1, steps + 1):
            await self.ctx.progress(step, steps, f"step {step}")
            await asyncio.sleep(0)
        return "done"


async def test_client_lists_every_mad_tool_and_the_admin_tools(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(eco.tools()) | ADMIN_TOOLS == set(listed)
        assert listed["probe_ping"].input_schema == eco.tool("probe_ping").input_schema
        assert listed["probe_ping"].description == "Echo the text."


async def test_a_call_returns_json_and_is_recorded_as_an_external_call(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        result = await client.call_tool("probe_ping", {"text": "ab", "times": 2})
        assert not result.is_error
        assert json.loads(result.content[0].text) == {"echo": "abab"} == result.structured_content
        call = eco.events.of("external_call")[-1]
        assert call.payload["tool"] == "probe_ping" and call.payload["ok"] is True
        assert call.payload["result"] == {"echo": "abab"}


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "probe_ping: missing required argument 'text'"),
    ({"text": "a", "times": "x"}, "probe_ping: times: Input should be a valid integer, unable to parse string as an integer (got 'x')"),
    ({"text": "a", "extra": 1}, "probe_ping: unexpected argument 'extra'"),
])
async def test_bad_arguments_are_a_one_line_tool_error(make_ecosystem, arguments, message) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        result = await client.call_tool("probe_ping", arguments)
        assert result.is_error and result.content[0].text == message


async def test_admin_tool_errors_are_one_line_too(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        result = await client.call_tool("mad_restart_mad", {"mad": "nobody"})
        assert result.is_error and result.content[0].text == "mad_restart_mad: no MAD named 'nobody' (the MADs are probe)"
        result = await client.call_tool("mad_profile", {"seconds": "soon"})
        assert result.is_error and "\n" not in result.content[0].text


async def test_an_unknown_tool_is_a_protocol_error(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        with pytest.raises(MCPError, match="unknown tool 'probe_pong'"):
            await client.call_tool("probe_pong", {})


async def test_a_long_tool_reports_progress(make_ecosystem) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        result = await client.call_tool("probe_slow", {"steps": 3}, progress_callback=on_progress)
        assert result.content[0].text == "done"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_admin_tools_send_pause_resume_restart_and_status(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        sent = (await client.call_tool("mad_send", {"content": "@Probe ping text=hi"})).structured_content
        assert sent["replies"][0]["data"]["result"] == {"echo": "hi"}
        assert (await client.call_tool("mad_pause", {})).structured_content == {"paused": True}
        assert eco.runners["probe"].state.value == "paused"
        await client.call_tool("mad_resume", {})
        restarted = (await client.call_tool("mad_restart_mad", {"mad": "probe"})).structured_content
        assert restarted["state"] == "running" and restarted["restarts"] == 1
        status = (await client.call_tool("mad_status", {})).structured_content
        assert status["mads"]["probe"]["state"] == "running"
        assert status["mads"]["probe"]["stages"]["dtr"]["handled"] == 1


async def test_mad_memory_over_mcp_reports_progress_and_every_mad_that_holds_memory(make_ecosystem) -> None:
    seen: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    async with make_ecosystem([Probe]) as eco, Client(Gateway(eco)) as client:
        result = await client.call_tool("mad_memory", {"seconds": 0.3}, progress_callback=on_progress)
        assert not result.is_error, result.content
        reading = result.structured_content
        assert reading["since"] == "window" and reading["bytes"] > 0
        assert sum(m["bytes"] for m in reading["mads"].values()) == reading["bytes"]
        assert eco.events.of("memory") and seen and all(0 <= done < 0.3 for done in seen)
        bad = await client.call_tool("mad_memory", {"seconds": 9999})
        assert bad.is_error and bad.content[0].text == "mad_memory: seconds must be between 0 and 600, got 9999"


async def test_the_handshake_says_the_tool_list_changes(make_ecosystem) -> None:
    """Hot reload adds and removes tools and the gateway tells its clients; a client that honours the
    capability must be told it will be told."""
    async with make_ecosystem([Probe]) as eco:
        for mode in ("legacy", "auto"):  # the handshake of today's clients, and the newest protocol's
            async with Client(Gateway(eco), mode=mode) as client:  # type: ignore[arg-type]
                assert client.server_capabilities.tools is not None
                assert client.server_capabilities.tools.list_changed is True, mode
