"""Supervision: each MAD runs in its own task, crashes are caught and restarted with backoff.

A handler that raises is recorded with its traceback and answered with an #error reply;
the MAD restarts after a growing pause; after too many crashes in a window it is FAILED
and answers everything with an error until restarted by hand. Its neighbours never notice.
"""
from __future__ import annotations

import asyncio
import enum
import os
import time
import traceback
from functools import partial
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .accounting import Account, StepTracker, metered
from .background import Background
from .bus import Delivery, Mailbox, Observation
from .errors import MADUnavailable, MadError, RemoteFailure
from .events import Crash, Handled, Restart, State
from .hub import before_waiting, current_correlation, current_mad, current_progress, current_receipt
from .mad import MAD, ToolSpec

if TYPE_CHECKING:
    from .context import CoreContext
    from .hub import EventHub


class MADState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    PAUSED = "paused"
    FAILED = "failed"
    STOPPED = "stopped"
    RETIRED = "retired"


@dataclass(slots=True)
class Invocation:
    """A tool call waiting in a MAD's mailbox; its result goes to the future."""

    spec: ToolSpec
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]
    correlation_id: str | None = None
    progress: Callable[[float, float | None, str | None], Any] | None = None
    receipt: Any = None
    """Where an entry of a distributed inbox is answered and acknowledged (None in one process)."""


@dataclass(slots=True)
class _Retire:
    """Marks the end of a retiring MAD's mailbox: everything before it is still answered."""

    reason: str
    done: asyncio.Future[None]


def correlation_of(item: Any) -> str | None:
    """The correlation id a mailbox item carries."""
    if type(item) is Invocation:
        return item.correlation_id
    message = getattr(item, "message", None)
    return message.correlation_id if message is not None else None


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, for a user."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (MadError, RemoteFailure)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


GROUP_MAX = 64
"""Inbox entries handled in one transaction of the MAD's state at the most (group commit)."""
GROUP_SECONDS = 0.005
"""No entry joins a group once it has been open this long: the first ones' answers are not held back for long."""
HANDLED_MIN_CPU = 0.001
"""Seconds of CPU from which a handled message is journalled with its cost (`handled`): what can make a spike;
cheaper ones would double the journal's events per message for nothing to blame."""


class MADRunner:
    """Owns one MAD: its instance, mailbox, task, crash history and account."""

    def __init__(
        self,
        cls: type[MAD],
        ctx: CoreContext,
        hub: EventHub,
        tracker: StepTracker,
        *,
        mailbox_size: int = 1000,
        mailbox_waiting: int | None = None,
        restart_backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_crashes: int = 5,
        crash_window: float = 60.0,
    ) -> None:
        self.cls = cls
        self.name = cls.name
        self.ctx = ctx
        self.hub = hub
        self.tracker = tracker
        self.mailbox = Mailbox(mailbox_size, mailbox_waiting)
        self.account = Account(self.name)
        self.instance: MAD | None = None
        self.state = MADState.STOPPED
        self.failure: str | None = None
        self.restart_backoff = restart_backoff
        self.max_backoff = max_backoff
        self.max_crashes = max_crashes
        self.crash_window = crash_window
        self.crash_times: deque[float] = deque()
        self.restarts = 0
        self.last_answered: str | None = None
        """The id of the last message this MAD published a reply to."""
        self.last_active = time.time()
        self._task: asyncio.Task[None] | None = None
        self._resume = asyncio.Event()
        self._resume.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._held: deque[Any] = deque()
        self._group: Any = None
        """The group of inbox entries being handled in one transaction (group commit), if any."""
        self.background = Background()
        """The instance's background tasks (ctx.spawn): they live as long as the instance."""
        self.on_crash: Callable[[MADRunner, BaseException], None] | None = None
        self.build: Callable[[type[MAD]], Any] = lambda cls: cls(self.ctx)
        """Makes an instance of a class: in this process, or (isolation) a stand-in for one in its own."""

    # lifecycle -------------------------------------------------------------
    async def prepare(self) -> None:
        """Make the instance ahead of start: an isolated MAD's process spawns and loads its module meanwhile."""
        self.state = MADState.STARTING
        self.instance = self.build(self.cls)
        prepare = getattr(self.instance, "prepare", None)
        if prepare is not None:
            await prepare()

    async def start(self) -> None:
        if self.instance is None or self.state != MADState.STARTING:
            self.state = MADState.STARTING
            self.instance = self.build(self.cls)
        assert self.instance is not None
        token = current_mad.set(self.name)
        try:
            await metered(self.instance.on_start(), self.account, self.tracker, f"{self.name}.on_start")
        finally:
            current_mad.reset(token)
        self.state = MADState.RUNNING
        self._task = asyncio.create_task(self._loop(), name=f"mad:{self.name}")

    async def stop(self) -> None:
        await self.interrupt()
        await self.end_background()
        if self.instance is not None and self.state not in (MADState.FAILED,):
            try:
                await self.instance.on_stop()
            except Exception as exc:
                self.hub.emit(Crash(mad=self.name, handler="on_stop", error=one_line(exc),
                                    traceback=traceback.format_exc()))
        self._fail_pending(MADUnavailable(f"{self.name} is stopping"))
        self.state = MADState.STOPPED

    async def restart(self) -> None:
        """Restart by hand: a FAILED MAD comes back with a clean crash history; its mailbox is kept."""
        self.crash_times.clear()
        self.failure = None
        await self.replace()
        self.restarts += 1
        self.hub.emit(Restart(mad=self.name, reason="requested", restarts=self.restarts))

    async def interrupt(self) -> None:
        """Stop the loop task; a message taken but not yet handled goes back to the front of the line."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def replace(self, cls: type[MAD] | None = None, instance: MAD | None = None) -> None:
        """Swap in a fresh instance (of a new class, for a reload) on the SAME mailbox; nothing queued is lost."""
        await self.interrupt()
        await self.end_background()  # the old instance's tasks must not go on running the old code
        old = self.instance
        if old is not None and self.state not in (MADState.FAILED, MADState.STOPPED):
            try:
                await old.on_stop()
            except Exception as exc:
                self.ctx.log.warning("%s.on_stop failed: %s", self.name, one_line(exc))
        if cls is not None:
            self.cls = cls
        self.instance = instance or self.build(self.cls)
        token = current_mad.set(self.name)
        try:
            await metered(self.instance.on_start(), self.account, self.tracker, f"{self.name}.on_start")
        finally:
            current_mad.reset(token)
        self.state = MADState.RUNNING if self._resume.is_set() else MADState.PAUSED
        self._task = asyncio.create_task(self._loop(), name=f"mad:{self.name}")

    async def retire(self, reason: str) -> None:
        """Answer what is queued, then refuse everything with the reason (its module was removed)."""
        marker = _Retire(reason, asyncio.get_running_loop().create_future())
        await self.mailbox.put(marker)
        await marker.done
        await self.end_background()
        if self.instance is not None:
            try:
                await self.instance.on_stop()
            except Exception as exc:
                self.ctx.log.warning("%s.on_stop failed: %s", self.name, one_line(exc))

    def pause(self) -> None:
        if self.state == MADState.RUNNING:
            self.state = MADState.PAUSED
        self._resume.clear()

    def resume(self) -> None:
        if self.state == MADState.PAUSED:
            self.state = MADState.RUNNING
        self._resume.set()

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        """Run a coroutine beside the mailbox as this MAD's background work.

        Its CPU is charged to the MAD (each step metered, the watchdog sees it block), what it
        logs is the MAD's, and it ends with the instance: a restart, reload, retire or stop
        cancels it. If it raises, a `crash` event names it; the MAD keeps serving its mailbox.
        """
        if self.state in (MADState.FAILED, MADState.RETIRED, MADState.STOPPED):
            coro.close()
            raise MADUnavailable(self.unavailable_reason())
        handler = f"{self.name}.{name}"

        async def run() -> None:
            current_mad.set(self.name)
            try:
                await metered(coro, self.account, self.tracker, handler)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.account.errors += 1
                self.account.crashes += 1
                self.hub.emit(Crash(mad=self.name, handler=handler, error=one_line(exc),
                                    traceback=traceback.format_exc(), background=True))
                self.ctx.log.error("%s crashed in %s: %s", self.name, handler, one_line(exc))

        return self.background.start(run(), f"mad:{handler}")

    async def end_background(self) -> None:
        """Cancel the instance's background tasks and wait until they are gone."""
        await self.background.end()

    async def wait_idle(self) -> None:
        """Wait until the handler in progress, if any, has finished."""
        await self._idle.wait()

    # work ------------------------------------------------------------------
    async def invoke(self, spec: ToolSpec, kwargs: dict[str, Any], correlation_id: str | None = None,
                     progress: Callable[[float, float | None, str | None], Any] | None = None) -> Any:
        """Run a tool through the mailbox, in turn with the MAD's messages; returns its result."""
        if self.state in (MADState.FAILED, MADState.RETIRED, MADState.STOPPED):
            raise MADUnavailable(self.unavailable_reason())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.mailbox.put(Invocation(spec, kwargs, future, correlation_id, progress))
        return await future

    async def call_inline(self, spec: ToolSpec, kwargs: dict[str, Any]) -> Any:
        """Run one of this MAD's tools from inside its own handler (no mailbox: it would wait on itself)."""
        assert self.instance is not None
        remote = getattr(self.instance, "invoke_tool", None)
        if remote is not None:  # an isolated MAD: the tool runs in its own process
            return await remote(spec, kwargs)
        fn = getattr(self.instance, spec.method)
        if spec.is_async:
            return await fn(**kwargs)
        account = self.account

        def run() -> Any:
            cpu0 = time.thread_time()
            try:
                return fn(**kwargs)
            finally:
                account.add_cpu(time.thread_time() - cpu0)

        return await asyncio.to_thread(run)

    def unavailable_reason(self) -> str:
        if self.state == MADState.FAILED:
            return f"{self.name} has FAILED ({self.failure}); restart it with mad_restart_mad"
        if self.state == MADState.RETIRED:
            return f"{self.name} is retired: {self.failure or 'its module was removed'}"
        return f"{self.name} is {self.state.value}"

    async def _loop(self) -> None:
        current_mad.set(self.name)  # this task's context: everything it runs is this MAD's
        mailbox = self.mailbox
        held = self._held
        while True:
            item = held.popleft() if held else await mailbox.get()
            if not self._resume.is_set():
                try:
                    await self._resume.wait()
                except asyncio.CancelledError:
                    held.appendleft(item)
                    raise
            if type(item) is _Retire:
                self.failure = item.reason
                self.state = MADState.RETIRED
                item.done.set_result(None)
                continue
            if self.state in (MADState.FAILED, MADState.RETIRED):
                await self._refuse(item)
                continue
            self._idle.clear()
            try:
                receipt = item.receipt
                if receipt is not None and receipt.once is not None and self.placement == "core":
                    await self._handle_group(item, receipt)
                else:
                    await self._handle(item)
            finally:
                self._idle.set()
                self.last_active = time.time()

    async def _handle_group(self, item: Any, receipt: Any) -> None:
        """Inbox entries queued together, handled in one transaction of the MAD's state (group commit).

        Each handler runs under a savepoint of its own; the ids and answers of those that succeeded are
        recorded with their effects and committed once, and only then are they answered and acknowledged.
        The group takes the entries that are in the mailbox already, in their order, up to GROUP_MAX or
        GROUP_SECONDS; it ends at a handler that crashes or is cancelled (those before it commit first,
        then that one is dealt with as when alone).
        """
        group = receipt.group(self.ctx.state)
        group.begin()
        self._group = group
        waiting = before_waiting.set(partial(self._flush_before_wait, group))  # (its handlers run in this task)
        try:
            while group.answered_before(item, item.receipt) or await self._handle(item, group):
                if len(group) >= GROUP_MAX or time.perf_counter() - group.started >= GROUP_SECONDS:
                    break
                item = self._next_in_group()
                if item is None:
                    break
            else:
                return  # ended at a failure: committed there
        except BaseException:
            if group.conn.in_transaction:
                self._end_group_before_failure(group)
            raise
        finally:
            self._group = None
            before_waiting.reset(waiting)
        try:
            self._commit_group(group)
        except Exception as exc:
            await self._crashed(item, f"{self.name} state commit", exc)

    def _flush_before_wait(self, group: Any) -> None:
        """A handler of the group is about to wait on another MAD: the entries handled before it are committed
        and answered now, when its own effects allow (none yet), so that MAD never waits on us waiting on it."""
        if self._group is not group:
            return
        try:
            outcomes = group.reopen()
        except Exception as exc:  # the commit failed and rolled back: those entries are answered with the error
            self._hand_out([(item, receipt, None, exc) for item, receipt, _, _ in group.abandon()])
            self.hub.emit(Crash(mad=self.name, handler=f"{self.name} state commit", error=one_line(exc),
                                traceback=traceback.format_exc()))
            self.ctx.log.error("%s: the state commit failed: %s", self.name, one_line(exc))
            return
        if outcomes:
            self._hand_out(outcomes)

    def _next_in_group(self) -> Any:
        """The next mailbox item when it can join the group now (an inbox entry, the MAD running), else None."""
        if self._held or self.mailbox.empty() or not self._resume.is_set() or self.state is not MADState.RUNNING:
            return None
        item = self.mailbox.get_nowait()
        receipt = getattr(item, "receipt", None)
        if receipt is None or receipt.once is None:
            self._held.appendleft(item)  # handled next, after the group
            return None
        return item

    def _commit_group(self, group: Any) -> None:
        """Commit the group, then answer each entry (its future, its receipt); when the commit fails, every
        entry of the group is answered with that error and the error is raised."""
        try:
            outcomes = group.commit()
        except Exception as exc:
            for item, receipt, _, _ in group.rollback():
                if type(item) is Invocation and not item.future.done():
                    item.future.set_exception(exc)
                receipt.finish(error=exc)
            raise
        self._hand_out(outcomes)

    @staticmethod
    def _hand_out(outcomes: list[tuple[Any, Any, Any, BaseException | None]]) -> None:
        """Answer each committed entry: its caller's future here, its receipt (the reply, the ack)."""
        for item, receipt, result, error in outcomes:
            if type(item) is Invocation and not item.future.done():
                if error is None:
                    item.future.set_result(result)
                else:
                    item.future.set_exception(error)
            receipt.finish(result, error)

    def _end_group_before_failure(self, group: Any) -> None:
        """Commit what the group handled before the handler that failed (which is then dealt with as when alone)."""
        try:
            self._commit_group(group)
        except Exception as exc:  # those entries were answered with the error
            self.hub.emit(Crash(mad=self.name, handler=f"{self.name} state commit", error=one_line(exc),
                                traceback=traceback.format_exc()))
            self.ctx.log.error("%s: the state commit failed: %s", self.name, one_line(exc))

    async def _handle(self, item: Any, group: Any = None) -> bool:
        """Handle one mailbox item; False when, in a group, it failed and ended the group."""
        instance = self.instance
        assert instance is not None
        account = self.account
        account.handled += 1
        if type(item) is Delivery:
            account.messages_in += 1
            handler = f"{self.name}.on_message"
            coro = instance.on_message(item.message, item.addressed)
        elif type(item) is Invocation:
            account.tool_calls += 1
            handler = f"{self.name}.{item.spec.method}"
            coro = self.call_inline(item.spec, item.kwargs)
        elif type(item) is Observation:
            handler = f"{self.name}.on_observe"
            coro = instance.on_observe(item.message, item.conversation)
        else:
            raise TypeError(f"unknown mailbox item {item!r}")
        cpu_before, wall_before = account.cpu_seconds, time.perf_counter()
        try:
            return await self._run_handler(item, coro, handler, group)
        finally:
            cpu = account.cpu_seconds - cpu_before
            if cpu >= HANDLED_MIN_CPU and self.hub.sinks and type(item) is not Observation:  # what it cost
                self._handled(item, handler, cpu, time.perf_counter() - wall_before)

    def _handled(self, item: Any, handler: str, cpu: float, wall: float) -> None:
        if type(item) is Delivery:
            message = item.message
            head = message.content.strip().splitlines()[0][:120] if message.content.strip() else ""
            self.hub.emit(Handled(mad=self.name, conversation=message.conversation,
                                  correlation_id=message.correlation_id, handler=handler,
                                  cpu_ms=round(cpu * 1000, 3), wall_ms=round(wall * 1000, 3),
                                  message_id=message.id, sender=message.sender, head=head))
        else:
            self.hub.emit(Handled(mad=self.name, handler=handler, cpu_ms=round(cpu * 1000, 3),
                                  wall_ms=round(wall * 1000, 3), tool=item.spec.name))

    async def _run_handler(self, item: Any, coro: Any, handler: str, group: Any = None) -> bool:
        """Run the handler; with a group (an inbox entry), in a savepoint of the group's transaction, its
        answer held until the group commits. False when it failed and ended the group."""
        account = self.account
        token = current_correlation.set(correlation_of(item))
        progress_token = current_progress.set(item.progress if type(item) is Invocation else None)
        receipt = item.receipt
        receipt_token = current_receipt.set(receipt) if receipt is not None else None
        try:
            if group is not None:  # its effects and the record of its answer commit together
                group.enter()
                try:
                    result = await metered(coro, account, self.tracker, handler)
                except BaseException:
                    group.drop()  # its own effects only
                    raise
                group.keep(item, receipt, result)
                return True
            result = await metered(coro, account, self.tracker, handler)
        except MadError as exc:  # a tool's own refusal: an error result, not a crash
            account.errors += 1
            if group is not None:  # answered with the others, at the commit
                group.fail(item, receipt, exc)
                return True
            if type(item) is Invocation and not item.future.done():
                item.future.set_exception(exc)
            if receipt is not None:
                receipt.finish(error=exc)
            return True
        except asyncio.CancelledError:
            if group is not None:  # those handled before it stay handled
                self._end_group_before_failure(group)
            reason = f"{self.name} was interrupted while running {handler}"
            if type(item) is Invocation and not item.future.done():
                item.future.set_exception(MADUnavailable(reason))
            elif (type(item) is Delivery and item.addressed and item.message.reply_to is None
                  and self.last_answered != item.message.id):  # a handler that already replied owes no error
                await self._reply_error(item, reason)
            if receipt is not None:
                receipt.finish(error=MADUnavailable(reason))
            raise
        except Exception as exc:
            if group is not None:  # those handled before it commit first
                self._end_group_before_failure(group)
            if receipt is not None:  # answered now; the error reply and the restart follow
                receipt.finish(error=exc)
            await self._crashed(item, handler, exc)
            return False
        finally:
            current_correlation.reset(token)
            current_progress.reset(progress_token)
            if receipt_token is not None:
                current_receipt.reset(receipt_token)
        if type(item) is Invocation and not item.future.done():
            item.future.set_result(result)
        if receipt is not None:
            receipt.finish(result=result)
        return True

    async def _crashed(self, item: Any, handler: str, exc: Exception) -> None:
        account = self.account
        account.errors += 1
        account.crashes += 1
        cause = one_line(exc)
        tb = getattr(exc, "remote_traceback", None) or traceback.format_exc()
        correlation = correlation_of(item)
        self.hub.emit(Crash(mad=self.name, correlation_id=correlation, handler=handler, error=cause, traceback=tb))
        self.ctx.log.error("%s crashed in %s: %s", self.name, handler, cause)
        if type(item) is Invocation and not item.future.done():
            item.future.set_exception(MadError(f"{item.spec.name} crashed: {cause}"))
        elif type(item) is Delivery and item.addressed and item.message.reply_to is None:
            await self._reply_error(item, f"{self.name} crashed in {handler}: {cause}")
        if self.on_crash is not None:
            self.on_crash(self, exc)
        if self._count_crash(cause):
            await self._restart_after_crash(cause)

    def _count_crash(self, cause: str) -> bool:
        """Count a crash in the window; False (and FAILED) when it is one too many."""
        now = time.monotonic()
        self.crash_times.append(now)
        while self.crash_times and now - self.crash_times[0] > self.crash_window:
            self.crash_times.popleft()
        if len(self.crash_times) >= self.max_crashes:
            self.state = MADState.FAILED
            self.failure = f"{len(self.crash_times)} crashes in {self.crash_window:g} s; last: {cause}"
            self.hub.emit(State(mad=self.name, state="failed", reason=self.failure))
            self.ctx.log.error("%s is FAILED: %s", self.name, self.failure)
            return False
        return True

    async def _restart_after_crash(self, cause: str) -> None:
        self.state = MADState.RESTARTING
        self.hub.emit(State(mad=self.name, state="restarting", reason=cause))
        delay = min(self.max_backoff, self.restart_backoff * (2 ** (len(self.crash_times) - 1)))
        await asyncio.sleep(delay)
        await self.end_background()
        old = self.instance
        if old is not None:
            try:
                await old.on_stop()
            except Exception as exc:
                self.ctx.log.warning("%s.on_stop failed during restart: %s", self.name, one_line(exc))
        self.instance = self.build(self.cls)
        try:
            await metered(self.instance.on_start(), self.account, self.tracker, f"{self.name}.on_start")
        except Exception as exc:
            self.state = MADState.FAILED
            self.failure = f"on_start failed during restart: {one_line(exc)}"
            self.hub.emit(State(mad=self.name, state="failed", reason=self.failure, traceback=traceback.format_exc()))
            return
        self.restarts += 1
        self.state = MADState.RUNNING if self._resume.is_set() else MADState.PAUSED
        self.hub.emit(Restart(mad=self.name, reason=cause, restarts=self.restarts, backoff=delay))

    async def _refuse(self, item: Any) -> None:
        reason = self.unavailable_reason()
        if type(item) is Invocation and not item.future.done():
            item.future.set_exception(MADUnavailable(reason))
        elif type(item) is Delivery and item.addressed and item.message.reply_to is None:
            await self._reply_error(item, reason)

    async def _reply_error(self, item: Delivery, text: str) -> None:
        reply = item.message.reply(self.name, text, tags=["error"], data={"error": text})
        try:
            await self.ctx.publish(reply)
        except MadError as exc:
            self.ctx.log.warning("could not deliver the error reply of %s: %s", self.name, one_line(exc))

    def _fail_pending(self, exc: Exception) -> None:
        for item in self._held:
            if type(item) is Invocation and not item.future.done():
                item.future.set_exception(exc)
        self._held.clear()
        while not self.mailbox.empty():
            item = self.mailbox.get_nowait()
            if type(item) is Invocation and not item.future.done():
                item.future.set_exception(exc)

    @property
    def placement(self) -> str:
        """`isolated` when the instance lives in its own process, else `core`."""
        return "isolated" if hasattr(self.instance, "invoke_tool") else "core"

    @property
    def pid(self) -> int | None:
        """The process the MAD runs in (None while its own process is not up)."""
        return getattr(self.instance, "pid", None) if self.placement == "isolated" else os.getpid()

    async def died_outside(self, cause: str) -> None:
        """The MAD's own process ended while no call was in it: a crash like any other, then a restart."""
        if self.state not in (MADState.RUNNING, MADState.PAUSED):
            return
        await self.interrupt()
        self.account.errors += 1
        self.account.crashes += 1
        self.hub.emit(Crash(mad=self.name, handler=f"{self.name} process", error=cause))
        self.ctx.log.error("%s crashed: %s", self.name, cause)
        if self._count_crash(cause):
            await self._restart_after_crash(cause)
        self._task = asyncio.create_task(self._loop(), name=f"mad:{self.name}")

    def status(self) -> dict[str, Any]:
        return {
            "mad": self.name,
            "state": self.state.value,
            "placement": self.placement,
            "pid": self.pid,
            "failure": self.failure,
            "restarts": self.restarts,
            "mailbox": self.mailbox.statistics(),
            "account": self.account.snapshot(),
            "last_active": self.last_active,
        }

