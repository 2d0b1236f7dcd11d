"""The ecosystem's directory in Redis: each MAD (description, tools, the processes hosting it) and each process.

A process keeps its entry alive by heartbeat; an entry that expires is a process gone, and its
MADs are no longer hosted there. Every process keeps a copy, refreshed at each heartbeat.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .keys import Keys

if TYPE_CHECKING:
    import redis.asyncio


class Directory:
    """What this process knows of the ecosystem: its MADs and processes, as of the last refresh."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, node: str) -> None:
        self.redis = client
        self.keys = keys
        self.node = node
        self.mads: dict[str, dict[str, Any]] = {}
        """Each MAD's description (as `isolation.remote.description` writes it)."""
        self.hosts: dict[str, list[str]] = {}
        """The live processes hosting each MAD."""
        self.nodes: dict[str, dict[str, Any]] = {}
        """Each live process: host, pid, its MADs, its public key, its figures."""

    async def announce(self, info: dict[str, Any], ttl: float) -> None:
        """Put this process in the directory (again), to expire unless announced within `ttl` seconds."""
        key = self.keys.node(self.node)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={k: json.dumps(v) for k, v in info.items()})
            pipe.pexpire(key, int(ttl * 1000))
            pipe.sadd(self.keys.nodes, self.node)
            await pipe.execute()

    async def host(self, name: str, description: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.mad(name), json.dumps(description))
            pipe.sadd(self.keys.hosts(name), self.node)
            pipe.sadd(self.keys.mads, name)
            await pipe.execute()

    async def withdraw(self, names: list[str]) -> None:
        """This process stops: it hosts nothing any more and leaves the directory."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.srem(self.keys.hosts(name), self.node)
            pipe.delete(self.keys.node(self.node))
            pipe.srem(self.keys.nodes, self.node)
            await pipe.execute()

    async def refresh(self) -> None:
        """Read the directory; processes whose entry expired are dropped from it."""
        node_ids = sorted(str(n) for n in await self.redis.smembers(self.keys.nodes))
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in node_ids:
                pipe.hgetall(self.keys.node(node))
            infos = await pipe.execute()
        nodes = {node: {k: json.loads(v) for k, v in info.items()} for node, info in zip(node_ids, infos) if info}
        gone = [node for node, info in zip(node_ids, infos) if not info]
        if gone:
            await self.redis.srem(self.keys.nodes, *gone)
        names = sorted(str(n) for n in await self.redis.smembers(self.keys.mads))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(self.keys.mad(name))
                pipe.smembers(self.keys.hosts(name))
            found = await pipe.execute()
        mads: dict[str, dict[str, Any]] = {}
        hosts: dict[str, list[str]] = {}
        for i, name in enumerate(names):
            if found[2 * i]:
                mads[name] = json.loads(found[2 * i])
                hosts[name] = sorted(h for h in found[2 * i + 1] if h in nodes)
        self.nodes, self.mads, self.hosts = nodes, mads, hosts

    def public_keys(self, mad: str) -> dict[str, str]:
        """The public keys of the live processes hosting a MAD (what a value for it is sealed to)."""
        return {node: self.nodes[node]["public"] for node in self.hosts.get(mad, []) if "public" in self.nodes[node]}
