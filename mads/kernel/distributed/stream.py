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

import orjson

from ..events import Record, to_json
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
        """One stream entry for the batch: its events as a JSON list (one entry per event would cost a command each)."""
        events = [[event.kind, event.mad, event.conversation, event.correlation_id, event.wall, event.mono,
                   self.code.get(event.mad or "") or self.code_elsewhere(event.mad),
                   event.payload_json if event.payload_json is not None else to_json(event.payload)]
                  for event in batch]
        try:
            text = orjson.dumps(events).decode()
        except TypeError:  # what orjson refuses (a lone surrogate in a name) the standard library escapes
            text = json.dumps(events)
        await self.redis.xadd(self.keys.events, {"node": self.node, "events": text},
                              maxlen=EVENTS_KEPT // BATCH, approximate=True)


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
        """Write the events of the entries after the last one read; returns how many entries were read."""
        found: Any = await self.redis.xread({self.keys.events: self.last}, count=1000, block=block)
        count = 0
        for _stream, entries in found or []:
            for entry_id, fields in entries:
                self.last = entry_id
                count += 1
                node = fields.get("node")
                if node == self.node:
                    continue
                for kind, mad, conversation, correlation, wall, mono, code, payload in json.loads(fields["events"]):
                    if code and code not in self._known:
                        await self._keep_module(code)
                    self.writer.handle(Record(kind, mad, conversation, correlation, wall=wall, mono=mono,
                                              payload_json=payload, node=node, code=code))
        return count

    async def _keep_module(self, code: str) -> None:
        self._known.add(code)
        found = await self.redis.hget(self.keys.modules, code)
        if found:
            module = json.loads(found)
            self.writer.add_module(code, module["name"], module["path"], module["mads"], module["source"])
