"""The kernel's seams: no import circle through the Ecosystem, a narrow context, typed events that travel."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mads.kernel import MAD, MadError, tool
from mads.kernel.context import MADContext
from mads.kernel.events import EVENT_TYPES, Custom, Event, Log, ToolCall, from_dict

KERNEL = Path(__file__).resolve().parents[2] / "mads" / "kernel"


def kernel_imports() -> dict[str, set[str]]:
    """Each kernel module (dotted, relative to the kernel) and the kernel modules it imports, TYPE_CHECKING too."""
    graph: dict[str, set[str]] = {}
    for path in KERNEL.rglob("*.py"):
        parts = path.relative_to(KERNEL).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__") or "__init__"
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = [*base, *(node.module.split(".") if node.module else [])]
                found.add(".".join(target))
                found.update(".".join([*target, alias.name]) for alias in node.names)
        graph[name] = found
    return {name: {t for t in targets if t in graph} for name, targets in graph.items()}


def test_no_module_the_ecosystem_is_built_from_imports_the_ecosystem() -> None:
    graph = kernel_imports()
    below: set[str] = set()
    todo = [t for t in graph["ecosystem"]]
    while todo:
        name = todo.pop()
        if name not in below and name != "__init__":
            below.add(name)
            todo.extend(graph[name])
    assert "ecosystem" not in below
    assert not [name for name in below if "ecosystem" in graph[name]]


def test_the_context_protocol_offers_no_environment_configuration_or_bus() -> None:
    offered = {name for name in dir(MADContext) if not name.startswith("_")} | set(MADContext.__annotations__)
    assert not offered & {"config", "environ", "environment", "bus", "conversations", "_eco", "runners"}
    assert {"send", "ask", "call", "state", "llm", "secret", "log", "spawn", "emit"} <= offered


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()))
def test_every_kind_is_one_dataclass_whose_payload_is_its_own_fields(cls: type[Event]) -> None:
    names = {f.name for f in dataclasses.fields(cls)} - {"mad", "conversation", "correlation_id"}
    assert cls.kind and cls.__module__ == "mads.kernel.events" and names


def test_an_event_crosses_a_process_boundary_as_plain_data_and_comes_back_the_same() -> None:
    event = ToolCall(mad="horace", correlation_id="k1", tool="horace_read_file", caller="human",
                     arguments={"path": "a.txt"})
    assert from_dict(event.to_dict()) == event
    assert from_dict(Custom(mad="rogers", name="conversation_created", data={"name": "ops"}).to_dict()) == \
        Custom(mad="rogers", name="conversation_created", data={"name": "ops"})
    with pytest.raises(ValueError, match="a log event does not fit"):
        from_dict({"kind": "log", "payload": {"nonsense": 1}})


class Emitter(MAD):
    """Emits what it is told."""

    @tool
    async def emit(self, kind: str, message: str = "") -> str:
        """Emit an event of this kind."""
        self.ctx.emit(kind, level="info", message=message) if kind == "log" else self.ctx.emit(kind, note=message)
        return "ok"

    @tool
    async def keys(self) -> str:
        """Ask for the kernel's keys."""
        return repr(self.ctx.credentials())

    @tool
    async def offer(self) -> str:
        """Offer itself as the LLM gateway."""
        self.ctx.provide("llm", self)
        return "ok"


async def test_a_mad_emits_logs_and_kinds_of_its_own_but_not_the_kernels_kinds(make_ecosystem) -> None:
    async with make_ecosystem([Emitter]) as eco:
        await eco.call_tool("emitter_emit", {"kind": "log", "message": "hello"})
        await eco.call_tool("emitter_emit", {"kind": "noticed", "message": "x"})
        assert [e.payload for e in eco.events.of("noticed")] == [{"note": "x"}]
        assert any(e.mad == "emitter" and e.payload["message"] == "hello" for e in eco.events.of("log"))
        with pytest.raises(MadError, match="'session_end' events are the kernel's own"):
            await eco.call_tool("emitter_emit", {"kind": "session_end"})


async def test_only_the_package_keepers_receive_keys_or_offer_kernel_services(make_ecosystem) -> None:
    async with make_ecosystem([Emitter], environ={"MAD_MASTER_KEY": "k" * 64}) as eco:
        with pytest.raises(MadError, match="emitter holds no keys: only Turing and Fiedler"):
            await eco.call_tool("emitter_keys", {})
        with pytest.raises(MadError, match="cannot offer the kernel service 'llm'"):
            await eco.call_tool("emitter_offer", {})
    assert isinstance(Log(level="info", message="m"), Event)
