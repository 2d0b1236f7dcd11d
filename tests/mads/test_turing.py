"""Turing keeps secrets encrypted, hands them only to granted MADs, audits every use and leaks them nowhere."""
from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mads.kernel import MAD, ToolError, tool
from mads.turing import Turing

VALUE = "sh-9f3c1e77-Distinctive-Secret-Value"


class Reader(MAD):
    """Reads a secret through Turing, as any MAD would."""

    @tool
    async def peek(self, name: str) -> dict[str, Any]:
        """Read a secret and say how long it is."""
        value = await self.ctx.secret(name)
        return {"length": len(value), "value": value}


def files_holding(home: Path, value: str) -> list[str]:
    """Every file below home (state DBs, -wal, -shm, keys) whose bytes contain the value."""
    needle = value.encode("utf-8")
    return [str(p) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]


def leaked_in_events(eco: Any, value: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    return [e.kind for e in eco.events.events
            if e.kind not in skip and value in json.dumps(e.payload, default=str)]


def leaked_in_logs(caplog: pytest.LogCaptureFixture, value: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if value in r.getMessage()]


async def test_secret_value_reaches_no_file_output_event_or_log(make_ecosystem, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    async with make_ecosystem(only=["turing"]) as eco:
        outputs = [await eco.call_tool("turing_set_secret", {"name": "api.key", "value": VALUE})]
        assert outputs[0]["name"] == "api.key" and outputs[0]["version"] == 1
        outputs.append(await eco.call_tool("turing_list_secrets", {}))
        outputs.append(await eco.call_tool("turing_grant", {"name": "api.key", "mad": "fiedler"}))
        outputs.append(await eco.call_tool("turing_audit", {}))
        assert VALUE not in json.dumps(outputs)
        assert files_holding(home, VALUE) == []
        assert leaked_in_events(eco, VALUE) == []
        assert eco.events.of("tool_call")[0].payload["arguments"]["value"] == "[redacted]"
        assert await eco.services["secrets"].reveal("api.key", "fiedler") == VALUE
    assert files_holding(home, VALUE) == []
    assert leaked_in_events(eco, VALUE) == []
    assert leaked_in_logs(caplog, VALUE) == []


async def test_secret_sent_as_a_bus_command_is_scrubbed_everywhere(make_ecosystem, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    async with make_ecosystem(only=["turing"]) as eco:
        message, replies = await eco.send(f"@Turing set_secret name=k value={VALUE}")
        assert replies[0].data["ok"] is True
        assert replies[0].data["result"]["name"] == "k"
        assert VALUE not in message.content
        assert all(VALUE not in r.content and VALUE not in json.dumps(r.data) for r in replies)
        _, replies = await eco.send("@Turing list_secrets")
        assert [s["name"] for s in replies[0].data["result"]] == ["k"]
        assert leaked_in_events(eco, VALUE) == []
        assert files_holding(home, VALUE) == []
        assert eco.services["secrets"]._decrypt(eco.services["secrets"]._row("k")) == VALUE
    assert files_holding(home, VALUE) == []
    assert leaked_in_logs(caplog, VALUE) == []


async def test_human_input_event_of_a_secret_command_is_scrubbed(make_ecosystem) -> None:
    async with make_ecosystem(only=["turing"]) as eco:
        await eco.send(f"@Turing set_secret name=k value={VALUE}")
        assert leaked_in_events(eco, VALUE) == []


async def test_rotation_changes_the_value_and_never_returns_it(make_ecosystem) -> None:
    async with make_ecosystem(only=["turing"]) as eco:
        keeper = eco.services["secrets"]
        await eco.call_tool("turing_set_secret", {"name": "db_password", "value": VALUE})
        await eco.call_tool("turing_grant", {"name": "db_password", "mad": "dewey"})
        rotated = await eco.call_tool("turing_rotate_secret", {"name": "db_password"})
        assert set(rotated) == {"name", "version", "created", "updated"} and rotated["version"] == 2
        fresh = await keeper.reveal("db_password", "dewey")
        assert fresh != VALUE and len(fresh) >= 32
        assert fresh not in json.dumps(rotated)
        assert leaked_in_events(eco, fresh) == []

        listing = await eco.call_tool("turing_list_secrets", {})
        assert listing == [{**rotated, "grants": ["dewey"]}]
        audit = await eco.call_tool("turing_audit", {"limit": 10})
        assert [(a["action"], a["actor"], a["allowed"]) for a in audit] == [
            ("read", "dewey", True), ("rotate", "human", True), ("grant", "human", True), ("set", "human", True)]
        assert fresh not in json.dumps(audit) and VALUE not in json.dumps(audit)
        assert len(await eco.call_tool("turing_audit", {"limit": 2})) == 2


async def test_a_mad_without_a_grant_is_refused_and_the_refusal_is_audited(make_ecosystem) -> None:
    async with make_ecosystem([Turing, Reader]) as eco:
        await eco.call_tool("turing_set_secret", {"name": "k", "value": VALUE})
        with pytest.raises(ToolError, match="reader has no grant for secret k"):
            await eco.call_tool("reader_peek", {"name": "k"})
        refused = (await eco.call_tool("turing_audit", {"limit": 1}))[0]
        assert (refused["actor"], refused["action"], refused["name"], refused["allowed"]) == (
            "reader", "read", "k", False)

        await eco.call_tool("turing_grant", {"name": "k", "mad": "Reader"})
        assert (await eco.call_tool("reader_peek", {"name": "k"}))["length"] == len(VALUE)
        assert (await eco.call_tool("turing_audit", {"limit": 1}))[0]["allowed"] is True
        assert leaked_in_events(eco, VALUE) == []

        await eco.call_tool("turing_revoke", {"name": "k", "mad": "reader"})
        with pytest.raises(ToolError, match="no grant"):
            await eco.call_tool("reader_peek", {"name": "k"})
        await eco.call_tool("turing_delete_secret", {"name": "k"})
        assert await eco.call_tool("turing_list_secrets", {}) == []
        actions = [a["action"] for a in await eco.call_tool("turing_audit", {"limit": 3})]
        assert actions == ["delete", "read", "revoke"]


async def test_bad_and_unknown_names_are_tool_errors(make_ecosystem) -> None:
    async with make_ecosystem(only=["turing"]) as eco:
        with pytest.raises(ToolError, match="not a secret name"):
            await eco.call_tool("turing_set_secret", {"name": "no spaces", "value": VALUE})
        for tool_name, args in (("turing_rotate_secret", {}), ("turing_delete_secret", {}),
                                ("turing_grant", {"mad": "x"}), ("turing_revoke", {"mad": "x"})):
            with pytest.raises(ToolError, match="no secret named nope"):
                await eco.call_tool(tool_name, {"name": "nope", **args})


async def test_master_key_file_is_private_and_reused(make_ecosystem, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    key_file = tmp_path / "home" / "master.key"
    async with make_ecosystem(only=["turing"]) as eco:
        await eco.call_tool("turing_set_secret", {"name": "k", "value": VALUE})
        await eco.call_tool("turing_grant", {"name": "k", "mad": "dewey"})
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert any("generated a master key in" in r.getMessage() for r in caplog.records)
    first = key_file.read_bytes()
    caplog.clear()
    async with make_ecosystem(only=["turing"]) as eco:
        assert await eco.services["secrets"].reveal("k", "dewey") == VALUE
    assert key_file.read_bytes() == first
    assert not any("generated a master key" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("encode", [
    lambda raw: base64.b64encode(raw).decode(),
    lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
    lambda raw: raw.hex(),
    lambda raw: "correct horse battery staple",
], ids=["base64", "urlsafe-base64", "hex", "passphrase"])
async def test_master_key_from_the_environment_writes_no_key_file(make_ecosystem, tmp_path, encode) -> None:
    environ = {"MAD_MASTER_KEY": encode(bytes(range(32)))}
    async with make_ecosystem(only=["turing"], environ=environ) as eco:
        await eco.call_tool("turing_set_secret", {"name": "k", "value": VALUE})
        await eco.call_tool("turing_grant", {"name": "k", "mad": "dewey"})
    async with make_ecosystem(only=["turing"], environ=environ) as eco:
        assert await eco.services["secrets"].reveal("k", "dewey") == VALUE
        assert leaked_in_events(eco, environ["MAD_MASTER_KEY"]) == []
    assert not (tmp_path / "home" / "master.key").exists()


async def test_a_wrong_master_key_locks_the_keeper(make_ecosystem) -> None:
    async with make_ecosystem(only=["turing"], environ={"MAD_MASTER_KEY": "first passphrase"}) as eco:
        await eco.call_tool("turing_set_secret", {"name": "k", "value": VALUE})
        await eco.call_tool("turing_grant", {"name": "k", "mad": "dewey"})
    async with make_ecosystem(only=["turing"], environ={"MAD_MASTER_KEY": "second passphrase"}) as eco:
        with pytest.raises(ToolError, match="master key does not open"):
            await eco.services["secrets"].reveal("k", "dewey")
        with pytest.raises(ToolError, match="locked"):
            await eco.call_tool("turing_set_secret", {"name": "j", "value": VALUE})
        assert [s["name"] for s in await eco.call_tool("turing_list_secrets", {})] == ["k"]
