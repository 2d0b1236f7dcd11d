"""What an ecosystem reports of itself: every MAD's status and liveness, and in distributed mode every process."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from .supervisor import MADState

if TYPE_CHECKING:
    from .bus import Bus
    from .cognition.engine import ThoughtEngine
    from .discovery import MADModule
    from .distributed.node import Node
    from .supervisor import MADRunner


class Introspected(Protocol):
    """What is read of an ecosystem to report on it."""

    runners: dict[str, MADRunner]
    modules: list[MADModule]
    node: Node | None
    bus: Bus
    started: bool
    last_seen: dict[str, float]
    services: dict[str, Any]

    def thought_engine(self, mad: str) -> ThoughtEngine: ...


def status(eco: Introspected) -> dict[str, Any]:
    """Every MAD's state, placement, module hash, mailbox, counters and stage figures."""
    hashes = {cls.name: mod.short_hash for mod in eco.modules for cls in mod.mads}
    node = eco.node
    here = [node.id] if node is not None else []
    mads = {name: {**runner.status(), "version": hashes.get(name), "nodes": here,
                   "stages": eco.thought_engine(name).statistics() if eco.started else {}}
            for name, runner in eco.runners.items()}
    found: dict[str, Any] = {"mads": mads, "bus": eco.bus.statistics()}
    gateway = eco.services.get("llm")
    if gateway is not None and hasattr(gateway, "in_flight"):
        found["llm_in_flight"] = [flight.to_dict() for flight in gateway.in_flight.values()]
    if node is None:
        return found
    hosts = node.directory.hosts
    for name in node.directory.mads:
        nodes = hosts.get(name, [])
        if name in mads:
            mads[name]["nodes"] = sorted(set(nodes) | set(here))
        else:
            mads[name] = {"mad": name, "state": "running" if nodes else "gone", "placement": "remote",
                          "pid": None, "nodes": nodes}
    found["node"] = node.id
    found["nodes"] = {name: {"host": info.get("host"), "pid": info.get("pid"), "mads": info.get("mads", []),
                             "heartbeat": info.get("heartbeat"), "cpu_percent": info.get("cpu_percent"),
                             "rss": info.get("rss")}
                      for name, info in node.directory.nodes.items()}
    return found


def directory(eco: Introspected) -> list[dict[str, Any]]:
    """Every participant with its liveness: HEALTHY, STALE or DISCONNECTED."""
    now = time.time()
    rows: list[dict[str, Any]] = []
    for name, runner in eco.runners.items():
        if runner.state in (MADState.RUNNING, MADState.PAUSED):
            liveness = "STALE" if len(runner.mailbox) >= runner.mailbox.maxsize else "HEALTHY"
        elif runner.state in (MADState.RESTARTING, MADState.STARTING):
            liveness = "STALE"
        else:
            liveness = "DISCONNECTED"
        rows.append({"participant": name, "kind": "mad", "state": runner.state.value,
                     "liveness": liveness, "last_active": runner.last_active,
                     "mailbox_depth": len(runner.mailbox)})
    if eco.node is not None:
        for name in sorted(set(eco.node.directory.mads) - set(eco.runners)):
            live = bool(eco.node.directory.hosts.get(name))
            rows.append({"participant": name, "kind": "mad", "state": "running" if live else "gone",
                         "liveness": "HEALTHY" if live else "DISCONNECTED", "last_active": None,
                         "mailbox_depth": 0})
    for name, seen in sorted(eco.last_seen.items()):
        if name in eco.runners:
            continue
        age = now - seen
        liveness = "HEALTHY" if age < 300 else "STALE" if age < 3600 else "DISCONNECTED"
        rows.append({"participant": name, "kind": "external", "state": None, "liveness": liveness,
                     "last_active": seen, "mailbox_depth": 0})
    return rows
