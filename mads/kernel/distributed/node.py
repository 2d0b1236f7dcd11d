"""This process as a node of a distributed ecosystem: its MADs read their inboxes, it calls the others' MADs.

- Each hosted MAD is a consumer of its inbox's group: entries become mailbox items carrying a
  receipt; when the handler is done (its effects and answer committed), the answer and the
  acknowledgement go to Redis in one transaction.
- Entries a dead process left pending are claimed after `claim_idle` seconds; an entry
  delivered `max_deliveries` times goes to the dead-letter stream.
- Calls to a MAD of another process go into its inbox; answers come back on this process's
  reply stream, as do replies to messages it waits on and kernel services (LLM, secrets).
- Losing Redis is survived: every loop waits for it with backoff (`bus_lost`, then `bus_back`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import redis
import redis.asyncio as aioredis
from pydantic_core import to_jsonable_python
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..bus import Delivery, Observation
from ..errors import MadError, UnknownToolError
from ..events import BusBack, BusLost, DeadLetter
from ..isolation.channel import encode_error
from ..isolation.remote import description, stand_in
from ..message import Message
from ..supervisor import Invocation
from . import once, scripts
from .address import BusAddress
from .calling import Calling
from .directory import Directory
from .keys import GROUP, Keys
from .receipt import Receipt
from .redis_bus import RedisBus
from .sealing import Keypair, is_sealed
from .stream import EventStream, StreamRecorder, publish_modules

if TYPE_CHECKING:
    from ..hub import EventHub
    from ..journal.writer import JournalWriter
    from ..mad import MAD, ToolSpec
    from ..supervisor import MADRunner

log = logging.getLogger("mads.kernel")
LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
"""What losing Redis looks like to a client."""
READ_BLOCK_MS = 1000
READ_COUNT = 64
"""Entries read at once at the most (each read costs a round trip; the entries of a read are handled in one
transaction of the MAD's state)."""
PREFETCH = 64
"""Entries of one inbox taken by this process and not yet answered, at the most: replicas share the work by
how fast they answer, instead of the first to read taking everything."""
SETTLE_BATCH = 256
"""Answers and acknowledgements sent in one transaction at the most."""
BACKOFF = (0.05, 2.0)
"""First and longest wait between tries to reach Redis again."""
DRIVER = DriverInfo(lib_version=getattr(redis, "__version__", None) or "99.99.99")
"""What each new connection tells Redis about its client, worked out once: redis-py otherwise reads its
package metadata from disk for every connection it opens (milliseconds, under load)."""


class Hosting(Protocol):
    """What a node needs of the ecosystem it is part of."""

    hub: EventHub
    runners: dict[str, MADRunner]
    services: dict[str, Any]
    modules: list[Any]
    module_listeners: list[Callable[[Any], None]]

    def prepare(self, spec: ToolSpec, args: dict[str, Any], raw: bool = False) -> dict[str, Any]: ...

    def reply_arrived(self, message: Message) -> None: ...


class Node(Calling):
    """One process of a distributed ecosystem."""

    def __init__(self, eco: Hosting, address: BusAddress, *, claim_idle: float = 60.0, max_deliveries: int = 5,
                 heartbeat: float = 1.0) -> None:
        self.eco = eco
        self.address = address
        self.keys = Keys(address.ecosystem)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}"
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.heartbeat = heartbeat
        self.redis = self._client()
        self.bus = RedisBus(self.redis, self.keys)
        self._ack = self.redis.register_script(scripts.ACK)
        self.directory = Directory(self.redis, self.keys, self.id)
        self.keypair = Keypair()
        self._calls: dict[str, asyncio.Future[Any]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._settling: set[asyncio.Task[Any]] = set()
        self._to_settle: list[tuple[Receipt, Any, BaseException | None]] = []
        self._acks: dict[str, list[str]] = {}
        """Entries answered with nothing to send, by inbox: acknowledged along with the inbox's next read (one
        round trip for both) or by the settler, whichever comes first."""
        self._taken: dict[str, int] = {}
        """Entries taken from each inbox and not yet answered."""
        self._room: dict[str, asyncio.Event] = {}
        self._settle_wanted = asyncio.Event()
        self._up = asyncio.Event()
        self._up.set()
        self._reconnecting: asyncio.Lock | None = None
        self._stopping = False
        self._stand_ins: dict[str, tuple[str, type[MAD]]] = {}
        self.figures: Callable[[], dict[str, Any]] = dict
        """This process's CPU and memory, announced with each heartbeat."""
        self.stream = EventStream(self.redis, self.keys, self.id)
        self.recorders: list[StreamRecorder] = []
        self.started = time.time()

    # life ----------------------------------------------------------------------
    async def connect(self) -> None:
        """Reach Redis once; MadError (exit 1) naming the URL without its password when it cannot."""
        try:
            await self.redis.ping()
        except (*LOST, ResponseError) as exc:
            await self.redis.aclose()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MadError(f"cannot reach Redis at {self.address.shown}: {reason}") from None
        await self.directory.refresh()

    async def close(self) -> None:
        """Let go of the connection (after `connect` alone, when nothing was started)."""
        await self.redis.aclose()
        self.redis = self._client()
        self.bus.rebind(self.redis)
        self._ack = self.redis.register_script(scripts.ACK)
        self.directory.redis = self.redis

    async def _drain_events(self) -> None:
        if self._to_settle:  # answers ready to go: send them rather than leave them to a redelivery
            batch, self._to_settle = self._to_settle, []
            await self._settle(batch)
        for inbox in list(self._acks):
            await self._acknowledge(inbox, self._acks.pop(inbox, []))
        await self.stream.flush(self._steady)
        for recorder in self.recorders:
            while await recorder.read():
                pass

    def _client(self) -> aioredis.Redis:
        """A client whose pool makes a caller wait for a free connection (many calls at once are no failure)."""
        pool = aioredis.BlockingConnectionPool.from_url(self.address.url, decode_responses=True, max_connections=64,
                                                        timeout=None, socket_connect_timeout=3,
                                                        socket_keepalive=True, driver_info=DRIVER)
        return aioredis.Redis.from_pool(pool)

    async def start(self) -> None:
        """Host this process's MADs, announce it, and start reading its inboxes and its replies."""
        self._reconnecting = asyncio.Lock()
        for script in (scripts.PUBLISH, scripts.JOIN, scripts.ACK):  # their first use costs no NOSCRIPT round
            await self.redis.script_load(script)
        for runner in self.eco.runners.values():
            await self._host(runner)
        await self._announce()
        await self.directory.refresh()
        self.stream.redis = self.redis
        self.stream.code = {cls.name: module.sha256 for module in self.eco.modules for cls in module.mads}
        self.stream.code_elsewhere = lambda mad: self.directory.mads.get(mad, {}).get("module")
        await publish_modules(self.redis, self.keys, self.eco.modules)
        self.eco.module_listeners.append(self._module_loaded)
        self.eco.hub.add_sink(self.stream)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._beat(), name="mad:node:heartbeat"),
                       loop.create_task(self._read_replies(), name="mad:node:replies"),
                       loop.create_task(self.stream.run(self._steady), name="mad:node:events"),
                       loop.create_task(self._settler(), name="mad:node:settle")]
        for recorder in self.recorders:
            await self._start_recorder(recorder)
        for name, runner in self.eco.runners.items():
            self._tasks.append(loop.create_task(self._consume(runner), name=f"mad:node:{name}:inbox"))
            self._tasks.append(loop.create_task(self._claim(runner), name=f"mad:node:{name}:claim"))

    def record_into(self, writer: JournalWriter) -> None:
        """Write every other process's events into this journal too (this process's own reach it directly)."""
        writer.node = self.id
        recorder = StreamRecorder(self.redis, self.keys, self.id, writer)
        self.recorders.append(recorder)
        if self._tasks:
            self._spawn(self._start_recorder(recorder))

    async def _start_recorder(self, recorder: StreamRecorder) -> None:
        recorder.redis = self.redis
        await self._steady(recorder.begin)
        self._tasks.append(asyncio.ensure_future(recorder.run(self._steady)))

    def _module_loaded(self, module: Any) -> None:
        for cls in module.mads:
            self.stream.code[cls.name] = module.sha256
        self._spawn(self._steady(lambda: publish_modules(self.redis, self.keys, [module])))

    async def stop(self) -> None:
        """Leave the directory; what this process took but did not answer stays pending for another."""
        with contextlib.suppress(*LOST, asyncio.TimeoutError):  # the last events out, the last events in
            await asyncio.wait_for(self._drain_events(), 3)
        self.eco.hub.remove_sink(self.stream)
        self._stopping = True
        tasks = [*self._tasks, *self._settling]
        for task in tasks:
            task.cancel()
        if tasks:
            _, hung = await asyncio.wait(tasks, timeout=2)
            if hung:  # a read that did not take the cancel: closing its connection ends it
                await self.redis.aclose()
                await asyncio.wait(hung, timeout=2)
        self._tasks = []
        with contextlib.suppress(*LOST):
            await asyncio.wait_for(self.directory.withdraw(list(self.eco.runners)), 3)
        await self.redis.aclose()

    async def _host(self, runner: MADRunner) -> None:
        inbox = self.keys.inbox(runner.name)
        try:
            await self.redis.xgroup_create(inbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        module = next((m.sha256 for m in self.eco.modules if runner.cls in m.mads), None)
        await self.directory.host(runner.name, {**description(runner.cls), "module": module})
        if runner.placement == "core":  # its entries are handled in transactions of its state: open it now
            runner.ctx.state  # noqa: B018

    async def _announce(self) -> None:
        await self.directory.announce({
            "host": socket.gethostname(), "pid": os.getpid(), "started": self.started, "heartbeat": time.time(),
            "mads": sorted(self.eco.runners), "public": self.keypair.public, **self.figures(),
        }, ttl=max(3.0, 5 * self.heartbeat))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._steady(self._announce)
            await self._steady(self.directory.refresh)

    # Redis going away ----------------------------------------------------------------
    async def _steady(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run one step against Redis, waiting out a lost connection (with backoff) and trying again."""
        while True:
            await self._up.wait()
            if self._stopping:
                raise asyncio.CancelledError
            try:
                return await step()
            except LOST as exc:
                if self._stopping:  # a connection cut off by our own stop
                    raise asyncio.CancelledError from exc
                await self._lost(exc)

    async def _lost(self, exc: BaseException) -> None:
        """The connection is gone: one task waits for Redis to come back, the others wait for it."""
        assert self._reconnecting is not None
        if self._reconnecting.locked():
            await self._up.wait()
            return
        async with self._reconnecting:
            self._up.clear()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.eco.hub.emit(BusLost(url=self.address.shown, error=reason))
            log.warning("lost Redis at %s (%s); reconnecting", self.address.shown, reason)
            lost_at, delay = time.monotonic(), BACKOFF[0]
            while True:
                await asyncio.sleep(delay)
                try:
                    await self.redis.ping()
                    break
                except LOST:
                    delay = min(delay * 2, BACKOFF[1])
            for runner in self.eco.runners.values():  # a Redis that lost its data has lost the groups too
                await self._host(runner)
            await self._announce()
            self.eco.hub.emit(BusBack(url=self.address.shown, down_s=round(time.monotonic() - lost_at, 3)))
            log.warning("Redis at %s is back", self.address.shown)
            self._up.set()

    # reading inboxes -------------------------------------------------------------------
    async def _consume(self, runner: MADRunner) -> None:
        """Read the MAD's inbox, keeping at most PREFETCH entries taken and not yet answered, so replicas
        share the work by how fast they answer instead of the first one taking everything."""
        inbox = self.keys.inbox(runner.name)
        room_made = self._room.setdefault(inbox, asyncio.Event())
        while True:
            while self._taken.get(inbox, 0) - len(self._acks.get(inbox, ())) >= PREFETCH:
                room_made.clear()
                await room_made.wait()
            acks = self._acks.pop(inbox, [])  # answered entries go with this read: their room is ours again
            room = max(1, min(READ_COUNT, PREFETCH - self._taken.get(inbox, 0) + len(acks)))

            async def read() -> tuple[Any, bool]:
                if not acks:
                    return await self.redis.xreadgroup(GROUP, self.id, {inbox: ">"}, count=room,
                                                       block=READ_BLOCK_MS), False
                async with self.redis.pipeline(transaction=False) as pipe:  # Redis runs them in this order
                    pipe.evalsha(self._ack.sha, 1, inbox, GROUP, *acks)
                    pipe.xreadgroup(GROUP, self.id, {inbox: ">"}, count=room, block=READ_BLOCK_MS)
                    acked, found = await pipe.execute(raise_on_error=False)
                if isinstance(found, Exception):
                    raise found
                return found, not isinstance(acked, Exception)  # (NOSCRIPT: a Redis that lost its scripts)

            try:
                found, acked = await self._steady(read)
            except BaseException as exc:
                if acks:  # (acknowledging again is harmless)
                    self._acks.setdefault(inbox, []).extend(acks)
                    self._settle_wanted.set()
                if not isinstance(exc, ResponseError) or "NOGROUP" not in str(exc):
                    raise
                await self._steady(lambda: self._host(runner))
                continue
            if acked:
                for _ in acks:
                    self._answered(inbox)
            elif acks:  # the settler acknowledges them (its script call loads the script again)
                self._acks.setdefault(inbox, []).extend(acks)
                self._settle_wanted.set()
            mailbox = runner.mailbox
            for _stream, entries in found or []:
                for entry_id, fields in entries:
                    item = self._item(runner, inbox, entry_id, fields)
                    if item is not None:
                        admitted = mailbox.enter(item)
                        if admitted is not None:  # the mailbox is full: wait in line, keeping the order
                            await admitted

    async def _claim(self, runner: MADRunner) -> None:
        """Take over what a dead process left pending past claim_idle; dead-letter what keeps failing."""
        inbox = self.keys.inbox(runner.name)
        idle_ms = int(self.claim_idle * 1000)
        while True:
            await asyncio.sleep(min(self.claim_idle / 2, 5.0))

            async def pending() -> Any:
                return await self.redis.xpending_range(inbox, GROUP, "-", "+", READ_COUNT, idle=idle_ms)

            for entry in await self._steady(pending):
                entry_id, deliveries = entry["message_id"], entry["times_delivered"]
                if deliveries >= self.max_deliveries:
                    await self._steady(lambda: self._dead_letter(runner.name, inbox, entry_id, deliveries))
                    continue

                async def claim() -> Any:
                    return await self.redis.xclaim(inbox, GROUP, self.id, idle_ms, [entry_id])

                for claimed_id, fields in await self._steady(claim):
                    if fields:
                        await self._take(runner, inbox, claimed_id, fields, redelivered=True)

    async def _dead_letter(self, mad: str, inbox: str, entry_id: str, deliveries: int) -> None:
        entries: Any = await self.redis.xrange(inbox, entry_id, entry_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if entries:
                pipe.xadd(self.keys.dead(mad), {**entries[0][1], "entry": entry_id, "deliveries": deliveries})
            pipe.xack(inbox, GROUP, entry_id)
            pipe.xdel(inbox, entry_id)
            await pipe.execute()
        self.eco.hub.emit(DeadLetter(mad=mad, entry=entry_id, deliveries=deliveries, stream=self.keys.dead(mad)))
        log.error("%s: entry %s was delivered %d times and moved to %s", mad, entry_id, deliveries,
                  self.keys.dead(mad))

    async def _take(self, runner: MADRunner, inbox: str, entry_id: str, fields: dict[str, str],
                    redelivered: bool = False) -> None:
        """One inbox entry into the MAD's mailbox (or answered at once when its answer is already recorded)."""
        item = self._item(runner, inbox, entry_id, fields, redelivered)
        if item is not None:
            await runner.mailbox.put(item)

    def _item(self, runner: MADRunner, inbox: str, entry_id: str, fields: dict[str, str],
              redelivered: bool = False) -> Any:
        """The mailbox item of one inbox entry, or None when it is dealt with already (answered from its
        record, refused, or served apart).

        Only a redelivered entry (claimed) can have been answered before: a first delivery is not looked up.
        """
        self._taken[inbox] = self._taken.get(inbox, 0) + 1
        kind = fields.get("kind")
        item: Any
        if kind == "message":  # the most frequent first
            message = Message.from_dict(orjson.loads(fields["message"]))
            if message.reply_to is not None:
                self.eco.reply_arrived(message)
            receipt = Receipt(inbox, entry_id, message.id, message.id, None, self._settle_later)
            if redelivered and self._answered_before(runner, receipt):
                return None
            item = Delivery(message, fields.get("addressed") == "1", receipt)
        elif kind in ("secret", "llm"):
            self._spawn(self._serve(runner, inbox, entry_id, kind, json.loads(fields["request"])))
            return None
        elif kind == "observe":
            receipt = Receipt(inbox, entry_id, None, settle=self._settle_later)
            item = Observation(Message.from_dict(orjson.loads(fields["message"])), json.loads(fields["conversation"]),
                               receipt)
        elif kind == "call":
            call = json.loads(fields["call"])
            receipt = Receipt(inbox, entry_id, call["id"], call=call, settle=self._settle_later)
            if call.get("deadline", 0) < time.time():  # its caller gave up: answering would reach nobody
                self._settle_later(receipt, None, MadError("the caller gave up"))
                return None
            if redelivered and self._answered_before(runner, receipt):
                return None
            try:
                spec = runner.cls.tools.get(call["tool"])
                if spec is None:
                    raise UnknownToolError(call["tool"], runner.cls.tools)
                kwargs = self.eco.prepare(spec, self._opened(call["arguments"]))
            except MadError as exc:
                self._settle_later(receipt, None, exc)
                return None
            item = Invocation(spec, kwargs, asyncio.get_running_loop().create_future(), call.get("correlation"),
                              None, receipt)
            item.future.add_done_callback(lambda f: f.exception())  # the receipt carries the outcome
        else:
            log.warning("%s: an inbox entry of unknown kind %r was dropped", runner.name, kind)
            self._settle_later(Receipt(inbox, entry_id, None), None, None)
            return None
        receipt.redelivered = redelivered  # looked up again when its turn comes (it may be queued twice)
        return item

    def _opened(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Arguments with the secret ones opened (they were sealed for the processes hosting the MAD)."""
        return {k: self.keypair.open(v, self.id) if is_sealed(v) else v for k, v in arguments.items()}

    def _answered_before(self, runner: MADRunner, receipt: Receipt) -> bool:
        """A redelivered entry whose answer is recorded: send that answer again, never handle it twice."""
        if runner.placement != "core" or receipt.once is None:
            return False
        answer = once.recorded(runner.ctx.state, receipt.once)
        if answer is None:
            return False
        receipt.replies = [Message.from_dict(m) for m in answer.get("replies", [])]
        self._settle_later(receipt, answer.get("result"), None)
        return True

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _settle_later(self, receipt: Receipt, result: Any, error: BaseException | None) -> None:
        """Queue an entry's answer and acknowledgement; the settler sends those queued together. An entry with
        nothing to send is only to acknowledge: its inbox's reader, if about to read, takes it along."""
        if not receipt.replies and receipt.call is None:
            self._acks.setdefault(receipt.stream, []).append(receipt.entry)
            room_made = self._room.get(receipt.stream)
            if room_made is not None:
                room_made.set()
        else:
            self._to_settle.append((receipt, result, error))
        self._settle_wanted.set()

    async def _settler(self) -> None:
        while True:
            await self._settle_wanted.wait()
            self._settle_wanted.clear()
            await asyncio.sleep(0)  # a reader waiting for room takes its inbox's acknowledgements first
            while self._to_settle:
                batch = self._to_settle[:SETTLE_BATCH]
                await self._steady(lambda: self._settle(batch))
                del self._to_settle[:len(batch)]
            for inbox in list(self._acks):
                entries = self._acks.pop(inbox, [])
                if entries:
                    await self._steady(lambda: self._acknowledge(inbox, entries))

    async def _acknowledge(self, inbox: str, entries: list[str]) -> None:
        """Acknowledge (and delete) answered entries of one inbox, each batch in one step."""
        for start in range(0, len(entries), SETTLE_BATCH):
            await self._ack(keys=[inbox], args=[GROUP, *entries[start:start + SETTLE_BATCH]])
        for _ in entries:
            self._answered(inbox)

    async def _settle(self, batch: list[tuple[Receipt, Any, BaseException | None]]) -> None:
        """Entries' answers (replies, calls' results) and their acknowledgements, in one transaction."""
        replies: list[tuple[int, Message]] = []
        """Each reply with the place of its publish among the transaction's commands."""
        done: dict[str, list[str]] = {}
        commands = 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for receipt, result, error in batch:
                for reply in receipt.replies:
                    await self.bus.publish(reply, pipe=pipe)
                    replies.append((commands, reply))
                    commands += 1
                call = receipt.call
                if call is not None:
                    commands += 1
                    answer: dict[str, Any] = {"id": call["id"], "ok": error is None}
                    if error is None:
                        answer["result"] = to_jsonable_python(result, fallback=str)
                    else:
                        answer["error"] = encode_error(error)
                    pipe.xadd(self.keys.replies(call["reply"]), {"kind": "result", "answer": json.dumps(answer)})
                done.setdefault(receipt.stream, []).append(receipt.entry)
            for stream, entries in done.items():
                pipe.xack(stream, GROUP, *entries)
                pipe.xdel(stream, *entries)
            results = await pipe.execute()
        for receipt, _, _ in batch:
            self._answered(receipt.stream)
        for place, reply in replies:  # (a call's result between two replies has its own place)
            self.bus.published_in(reply, results[place])

    def _answered(self, inbox: str) -> None:
        """One entry of the inbox is answered and acknowledged: room for another."""
        self._taken[inbox] = max(0, self._taken.get(inbox, 0) - 1)
        room_made = self._room.get(inbox)
        if room_made is not None:
            room_made.set()

    # what this process sees of the others ------------------------------------------------
    def remote_classes(self) -> dict[str, type[MAD]]:
        """A stand-in class for each MAD hosted only by other processes (its tools, from the directory)."""
        classes: dict[str, type[MAD]] = {}
        for name, found in self.directory.mads.items():
            if name in self.eco.runners:
                continue
            stamp = json.dumps(found, sort_keys=True)
            cached = self._stand_ins.get(name)
            if cached is None or cached[0] != stamp:
                cached = self._stand_ins[name] = (stamp, stand_in(found, f"remote_{name}", Path("-"), ""))
            classes[name] = cached[1]
        return classes

    def statistics(self) -> dict[str, Any]:
        return {"node": self.id, "bus": self.address.shown, "ecosystem": self.address.ecosystem,
                "connected": self._up.is_set()}
