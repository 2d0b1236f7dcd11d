"""Every process's events on one Redis stream, and the recorder that journals the other processes' events.

A process hands each event (already redacted by its hub) to `EventStream`, which sends them in
batches. A recording process writes its own events to its journal directly and reads the
stream for everyone else's, each kept with the process it happened in and the hash of the
module that produced it (the module's source is kept too, once).
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from ..events import Record
from .keys import Keys

if TYPE_CHECKING:
    import redis.asyncio

    from ..journal.writer import JournalWriter

EVENTS_KEPT = 1_000_000
"""About how many events the stream keeps (older ones are trimmed)."""
SEND_SECONDS = 0.02
BATCH = 500


class EventStream:
    """A hub sink: this process's events, sent to the ecosystem's event stream in batches."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, node: str) -> None:
        self.redis = client
        self.keys = keys
        self.node = node
        self.code: dict[str, str] = {}
        """Each local MAD's module hash, sent with its events."""
        self.code_elsewhere: Any = lambda mad: None
        """The module hash of a MAD hosted by another process (from the directory)."""
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()

    def handle(self, event: Record) -> None:
        self._queue.append(event)
        if len(self._queue) >= BATCH:
            self._wake.set()

    async def run(self, send: Any) -> None:
        """Send what is queued every SEND_SECONDS (sooner when a batch fills), through `send` (it waits out a lost
        connection)."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), SEND_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), BATCH))]
                await send(lambda: self._send(batch))

    async def flush(self, send: Any) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), BATCH))]
            await send(lambda: self._send(batch))

    async def _send(self, batch: list[Record]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in batch:
                pipe.xadd(self.keys.events, {
                    "node": self.node, "kind": event.kind, "mad": event.mad or "", "conversation": event.conversation or "",
                    "correlation": event.correlation_id or "", "wall": repr(event.wall), "mono": repr(event.mono),
                    "code": self.code.get(event.mad or "") or self.code_elsewhere(event.mad) or "",
                    "payload": event.payload_json if event.payload_json is not None else json.dumps(event.payload,
                                                                                                    default=str),
                }, maxlen=EVENTS_KEPT, approximate=True)
            await pipe.execute()


async def publish_modules(client: redis.asyncio.Redis, keys: Keys, modules: list[Any]) -> None:
    """Keep every module version this process loaded where a recorder finds it (hash -> source and MADs)."""
    if modules:
        await client.hset(keys.modules, mapping={m.sha256: json.dumps({
            "name": m.name, "path": str(m.path), "mads": [c.name for c in m.mads], "source": m.source})
            for m in modules})


class StreamRecorder:
    """Reads the other processes' events from the stream into a journal, from where the stream is now."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, node: str, writer: JournalWriter) -> None:
        self.redis = client
        self.keys = keys
        self.node = node
        self.writer = writer
        self._known: set[str] = set()
        self.last = "$"

    async def begin(self) -> None:
        """Start from the stream's present end (what came before belongs to other recordings)."""
        newest: Any = await self.redis.xrevrange(self.keys.events, count=1)
        self.last = newest[0][0] if newest else "0-0"

    async def run(self, read: Any) -> None:
        while True:
            await read(lambda: self.read(block=1000))

    async def read(self, block: int | None = None) -> int:
        """Write the entries after the last one read; returns how many were read."""
        found: Any = await self.redis.xread({self.keys.events: self.last}, count=1000, block=block)
        count = 0
        for _stream, entries in found or []:
            for entry_id, fields in entries:
                self.last = entry_id
                count += 1
                if fields.get("node") != self.node:
                    await self._write(fields)
        return count

    async def _write(self, fields: dict[str, str]) -> None:
        code = fields.get("code") or None
        if code and code not in self._known:
            self._known.add(code)
            found = await self.redis.hget(self.keys.modules, code)
            if found:
                module = json.loads(found)
                self.writer.add_module(code, module["name"], module["path"], module["mads"], module["source"])
        self.writer.handle(Record(fields["kind"], fields.get("mad") or None, fields.get("conversation") or None,
                                  fields.get("correlation") or None, wall=float(fields["wall"]),
                                  mono=float(fields["mono"]), payload_json=fields["payload"],
                                  node=fields.get("node"), code=code))
