"""Exact CPU time per MAD in one event loop: a coroutine is driven step by step and each step is timed.

Every `send()`/`throw()` into a handler coroutine runs nothing but that coroutine, so the
thread CPU time read around it belongs to the MAD that owns the handler. A watchdog
thread names the step that holds the loop too long.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

_thread_time = time.thread_time
_perf = time.perf_counter


@dataclass
class Account:
    """What one MAD has used: CPU and wall time in its handlers, traffic, tokens, cost, errors."""

    mad: str
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    handled: int = 0
    messages_in: int = 0
    messages_out: int = 0
    tool_calls: int = 0
    errors: int = 0
    crashes: int = 0
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_cpu(self, seconds: float) -> None:
        with self._lock:
            self.cpu_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass(slots=True)
class Step:
    """The handler step running right now on the loop, for the watchdog to read from its thread."""

    mad: str
    handler: str
    started: float
    reported: bool = False


class StepTracker:
    """Holds the step in progress; read from the watchdog thread without locks (one reference)."""

    def __init__(self) -> None:
        self.current: Step | None = None


class Metered:
    """Awaitable that runs a coroutine and charges each of its steps to an account."""

    __slots__ = ("_coro", "_account", "_tracker", "_handler")

    def __init__(self, coro: Coroutine[Any, Any, T], account: Account, tracker: StepTracker, handler: str) -> None:
        self._coro = coro
        self._account = account
        self._tracker = tracker
        self._handler = handler

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        account = self._account
        tracker = self._tracker
        step = Step(account.mad, self._handler, 0.0)
        to_send: Any = None
        to_throw: BaseException | None = None
        wall_start = _perf()
        try:
            while True:
                previous = tracker.current
                step.started = _perf()
                step.reported = False
                tracker.current = step
                cpu0 = _thread_time()
                try:
                    if to_throw is None:
                        yielded = coro.send(to_send)
                    else:
                        yielded = coro.throw(to_throw)
                except StopIteration as stop:
                    return stop.value
                finally:
                    account.cpu_seconds += _thread_time() - cpu0
                    tracker.current = previous
                try:
                    to_send = yield yielded
                    to_throw = None
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # cancellation and friends go into the handler
                    to_send = None
                    to_throw = exc
        finally:
            account.wall_seconds += _perf() - wall_start


def metered(coro: Coroutine[Any, Any, T], account: Account, tracker: StepTracker, handler: str) -> Metered:
    return Metered(coro, account, tracker, handler)


class Watchdog:
    """A thread that notices a handler step holding the event loop for longer than the threshold."""

    def __init__(self, tracker: StepTracker, threshold: float, report: Callable[[str, str, float], None]) -> None:
        self.tracker = tracker
        self.threshold = threshold
        self.report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mad-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        interval = min(0.1, self.threshold / 5)
        while not self._stop.wait(interval):
            step = self.tracker.current
            if step is None or step.reported:
                continue
            held = time.perf_counter() - step.started
            if held > self.threshold:
                step.reported = True
                self.report(step.mad, step.handler, held)
