"""The ecosystem: MADs discovered, wired to one bus and one event hub, supervised, and callable.

This is the one object the CLI, the MCP gateway and tests drive:

    async with Ecosystem(Config(home=tmp)) as eco:
        await eco.call_tool("horace_write_file", {"path": "a.txt", "content": "hi"})
        replies = await eco.send("@Dewey search query=hi")
"""
from __future__ import annotations

import asyncio
import logging
import time
import contextlib
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from . import introspection
from .accounting import StepTracker, Watchdog
from .bus import Bus, InMemoryBus
from .breakpoints import Breakpoints
from .cognition.engine import ThoughtEngine
from .config import Config
from .context import CoreContext
from .conversing import DEFAULT_CONVERSATION, HUMAN, Conversing
from .credentials import Credentials, take_credentials
from .discovery import MADModule, discover
from .errors import ArgumentError, MadError, UnknownToolError, UsageError
from .events import Blocked, State, ToolCall, ToolResult
from .distributed import parse_bus
from .distributed.services import RemoteGateway, RemoteKeeper
from .hub import EventHub, Redactor, about_to_wait
from .isolation.placements import Placements
from .mad import MAD, ToolSpec
from .reload import Reloader, watch
from .resources import Sampler
from .message import Message
from .schema import coerce, validate
from .supervisor import MADRunner, MADState, one_line

if TYPE_CHECKING:
    from .distributed.address import BusAddress
    from .distributed.node import Node

log = logging.getLogger("mads.kernel")


def distributed_node(eco: Ecosystem, address: BusAddress) -> Node:
    """This process's node of a distributed ecosystem (redis-py is needed only then)."""
    try:
        from .distributed.node import Node
    except ImportError as exc:
        raise UsageError(f"--bus needs the redis client: pip install 'mad[redis]' ({exc})") from None
    return Node(eco, address, claim_idle=eco.config.claim_idle)



class Ecosystem(Conversing):
    """Every MAD of one process, their bus, their events, and the calls into them."""

    def __init__(self, config: Config | None = None, *, mads: list[type[MAD]] | None = None,
                 bus: Bus | None = None, hub: EventHub | None = None) -> None:
        self.config = config or Config.from_env()
        self.hub = hub or EventHub(Redactor())
        self.config.environ = dict(self.config.environ)
        self.hub.redactor.add_environment(self.config.environ)
        self._credentials = take_credentials(self.config.environ, self.config.provider)
        """The keys, out of the environment from now on; only Turing and Fiedler receive their part."""
        self.node: Node | None = None
        """This process as a node of a distributed ecosystem (`Config.bus`), else None."""
        address = parse_bus(self.config.bus, self.config.ecosystem) if bus is None else None
        if address is not None:
            self.node = distributed_node(self, address)
            self.node.bus._on_publish = self._on_publish
        self.bus: Bus = bus or (self.node.bus if self.node is not None else InMemoryBus(on_publish=self._on_publish))
        self.tracker = StepTracker()
        self.services: dict[str, Any] = {}
        self.modules: list[MADModule] = []
        self._extra_mads = mads or []
        self.runners: dict[str, MADRunner] = {}
        self._engines: dict[str, ThoughtEngine] = {}
        self._waiters: dict[str, asyncio.Queue[Message]] = {}
        self.last_seen: dict[str, float] = {}
        self._watchdog: Watchdog | None = None
        self.sampler: Sampler | None = None
        self.reloader = Reloader(self)
        self.breaks = Breakpoints(self.hub, self.bus.publish, self._break_recipients)
        """Breakpoints on the bus (mad_break and the workbench's `b`)."""
        self._watcher: asyncio.Task[None] | None = None
        self.module_listeners: list[Callable[[MADModule], None]] = []
        """Called with every module version loaded after start (the journal keeps each one)."""
        self.tools_listeners: list[Callable[[], Awaitable[None]]] = []
        """Awaited when tools appear or vanish (the gateway tells its clients)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = False
        self.placements = Placements(self.config)
        """Which MADs run isolated, and inside what (chosen again at load)."""
        self._loaded = False

    # assembly ----------------------------------------------------------------
    def load(self) -> None:
        """Discover the MAD modules and build a runner for each MAD (no state opened yet)."""
        if self._loaded:
            return
        self._loaded = True
        cfg = self.config
        self.placements = Placements(cfg)
        self.modules = (discover(cfg.mad_path, cfg.include_package, self.load_module, cfg.replace)
                        if (cfg.include_package or cfg.mad_path or cfg.replace) else [])
        classes = [cls for mod in self.modules for cls in mod.mads] + list(self._extra_mads)
        self.placements.check({c.name for c in classes})
        if cfg.only is not None:
            wanted = {n.lower() for n in cfg.only}
            unknown = wanted - {c.name for c in classes}
            if unknown:
                raise UsageError(f"no MAD named {', '.join(sorted(unknown))}")
            classes = [c for c in classes if c.name in wanted]
        for cls in classes:
            if cls.name in self.runners or cls.name == HUMAN:
                raise UsageError(f"MAD name {cls.name!r} is taken")
            self.runners[cls.name] = self._runner(cls)

    def _runner(self, cls: type[MAD]) -> MADRunner:
        cfg = self.config
        runner = MADRunner(
            cls, CoreContext(self, cls.name), self.hub, self.tracker,
            mailbox_size=cfg.mailbox_size, mailbox_waiting=cfg.mailbox_waiting, restart_backoff=cfg.restart_backoff,
            max_crashes=cfg.max_crashes, crash_window=cfg.crash_window,
        )
        runner.build = lambda c: self.placements.instance(c, runner.ctx, runner.died_outside)
        return runner

    # placement -----------------------------------------------------------------
    def load_module(self, path: Path) -> MADModule:
        return self.placements.load_module(path)

    def is_isolated(self, cls: type[MAD]) -> bool:
        return self.placements.is_isolated(cls)

    async def start(self) -> None:
        """Open each MAD's state, run its migrations, start it; then take input."""
        self.load()
        self._loop = asyncio.get_running_loop()
        if self.node is not None:
            await self.node.connect()  # before anything: an unreachable Redis is one line, exit 1
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.placements.say_walls([name for name, runner in self.runners.items() if self.is_isolated(runner.cls)])
        for runner in self.runners.values():
            if runner.cls.migrations is not None and not self.is_isolated(runner.cls):  # isolated: in its process
                runner.cls.migrations.apply(runner.ctx.state)
        for name, runner in self.runners.items():
            await self.bus.register(name, runner.mailbox, observer=runner.cls.observes_all)
        await self.bus.register(HUMAN, None)
        # isolated MADs' processes start and load meanwhile; each MAD's on_start still runs in order
        early = {name: asyncio.ensure_future(runner.prepare()) for name, runner in self.runners.items()
                 if self.is_isolated(runner.cls)}
        for name, runner in self.runners.items():
            try:
                if name in early:
                    await early.pop(name)
                await runner.start()
            except Exception as exc:
                for waiting in early.values():
                    waiting.cancel()
                await asyncio.gather(*early.values(), return_exceptions=True)
                await self.stop()
                raise MadError(f"{runner.name} could not start: {one_line(exc)}") from exc
            self.hub.emit(State(mad=runner.name, state=runner.state.value))
        await self._ensure_conversation(DEFAULT_CONVERSATION)
        self._watchdog = Watchdog(self.tracker, self.config.block_threshold, self._blocked)
        self._watchdog.start()
        if self.config.sample_interval > 0:
            self.sampler = Sampler(self, self.config.sample_interval)
            self.sampler.start()
        if self.config.watch:
            self._watcher = asyncio.get_running_loop().create_task(watch(self, self.reloader), name="mad:watch")
        if self.node is not None:
            await self.node.start()
            self.services.setdefault("secrets", RemoteKeeper(self.node))
            self.services.setdefault("llm", RemoteGateway(self.node))
        self.started = True

    async def stop(self) -> None:
        """Stop every MAD (in reverse order), close their state; idempotent."""
        self.breaks.release_all()
        if self.node is not None and self.started:
            await self.node.stop()
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if self.sampler is not None:
            await self.sampler.stop()
            self.sampler = None
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for runner in reversed(list(self.runners.values())):
            await runner.stop()
            runner.ctx.close_state()
        self.started = False

    @contextlib.asynccontextmanager
    async def attached(self) -> AsyncIterator[Ecosystem]:
        """Within the block the other processes' MADs are known (a distributed ecosystem's directory is read);
        nothing starts. In one process it does nothing."""
        self.load()
        if self.node is None or self.started:
            yield self
            return
        await self.node.connect()
        try:
            yield self
        finally:
            await self.node.close()

    async def __aenter__(self) -> Ecosystem:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _blocked(self, mad: str, handler: str, held: float) -> None:
        """Called from the watchdog thread: log now, record the event once the loop runs again."""
        log.warning("watchdog: %s has held the event loop for %.0f ms (in %s)", mad, held * 1000, handler)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                lambda: self.hub.emit(Blocked(mad=mad, handler=handler, held_ms=round(held * 1000, 1))))

    # what a MAD's context and Thought Engine reach --------------------------------
    @property
    def home(self) -> Path:
        return self.config.home

    def runner(self, name: str) -> MADRunner:
        return self.runners[name]

    def key_credentials(self) -> Credentials:
        return self._credentials

    # tools -----------------------------------------------------------------
    def remote(self) -> dict[str, type[MAD]]:
        """MADs hosted only by other processes of a distributed ecosystem (stand-ins built from its directory)."""
        return self.node.remote_classes() if self.node is not None else {}

    def tools(self) -> dict[str, ToolSpec]:
        """Every tool of every MAD that can answer, by name (retired MADs' tools are gone)."""
        self.load()
        found = {name: spec for runner in self.runners.values() if runner.state != MADState.RETIRED
                 for name, spec in runner.cls.tools.items()}
        for cls in self.remote().values():
            found.update({name: spec for name, spec in cls.tools.items() if name not in found})
        return dict(sorted(found.items()))

    def tool(self, name: str) -> ToolSpec:
        self.load()
        for cls in [*(runner.cls for runner in self.runners.values()), *self.remote().values()]:
            spec = cls.tools.get(name)
            if spec is not None:
                return spec
        raise UnknownToolError(name, self.tools())

    def learn_secrets(self, spec: ToolSpec, kwargs: dict[str, Any]) -> None:
        """Remember the values of the tool's secret parameters, so nothing ever records them."""
        for key in spec.secret_params:
            value = kwargs.get(key)
            if isinstance(value, str):
                self.hub.redactor.add(value)

    def prepare(self, spec: ToolSpec, args: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """Coerce (when raw) and validate arguments; ArgumentError says what is wrong in one line."""
        if not isinstance(args, dict):
            raise ArgumentError(f"{spec.name}: arguments must be an object")
        if raw:
            try:
                args = coerce(spec.input_schema, args)
            except ArgumentError as exc:
                raise ArgumentError(f"{spec.name}: {exc}") from None
        if spec.model is None:  # a MAD the core never loaded: its own process validates
            return dict(args)
        return validate(spec.name, spec.model, args)

    async def call_tool(self, name: str, args: dict[str, Any] | None = None, *, caller: str = HUMAN,
                        raw: bool = False, correlation_id: str | None = None,
                        progress: Callable[[float, float | None, str | None], Any] | None = None) -> Any:
        """Validate and run one tool; returns its result as JSON-able data.

        A call from the tool's own MAD runs inline; any other goes through the MAD's mailbox.
        """
        about_to_wait()
        spec = self.tool(name)
        kwargs = self.prepare(spec, args or {}, raw)
        runner = self.runners.get(spec.mad)
        self.learn_secrets(spec, kwargs)
        hub = self.hub
        hub.emit(ToolCall(mad=spec.mad, correlation_id=correlation_id, tool=name, caller=caller,
                          arguments=to_jsonable_python(kwargs, fallback=str), secret_params=spec.secret_params))
        started = time.perf_counter()
        try:
            if runner is None:  # hosted by another process: through its inbox
                assert self.node is not None
                result = await self.node.call(spec.mad, name, kwargs, caller=caller, correlation=correlation_id,
                                              timeout=self.config.call_timeout, secret_params=spec.secret_params)
            elif caller == spec.mad:
                result = await runner.call_inline(spec, kwargs)
            else:
                result = await asyncio.wait_for(runner.invoke(spec, kwargs, correlation_id, progress),
                                                self.config.call_timeout)
        except asyncio.TimeoutError:
            error = f"{name} gave no result within {self.config.call_timeout:g} s"
            hub.emit(ToolResult(mad=spec.mad, correlation_id=correlation_id, tool=name, ok=False, error=error))
            raise MadError(error) from None
        except Exception as exc:
            hub.emit(ToolResult(mad=spec.mad, correlation_id=correlation_id, tool=name, ok=False,
                                error=one_line(exc), duration_ms=round((time.perf_counter() - started) * 1000, 3)))
            raise
        result = to_jsonable_python(result, fallback=str)
        hub.emit(ToolResult(mad=spec.mad, correlation_id=correlation_id, tool=name, ok=True,
                            result=result, duration_ms=round((time.perf_counter() - started) * 1000, 3)))
        return result

    # reload ------------------------------------------------------------------
    def replace_module(self, old: MADModule | None, new: MADModule | None) -> None:
        """Swap a module's record (None: added or deleted) and tell the listeners about the new version."""
        if old is not None and old in self.modules:
            self.modules.remove(old)
        if new is not None:
            self.modules.append(new)
            for listener in self.module_listeners:
                listener(new)

    async def add_mad(self, cls: type[MAD]) -> MADRunner:
        """Bring a new MAD into the running ecosystem: state, migrations, bus, start."""
        if cls.name in self.runners or cls.name == HUMAN:
            raise UsageError(f"MAD name {cls.name!r} is taken")
        runner = self._runner(cls)
        if cls.migrations is not None and not self.is_isolated(cls):
            cls.migrations.apply(runner.ctx.state)
        self.runners[cls.name] = runner
        await self.bus.register(cls.name, runner.mailbox, observer=cls.observes_all)
        await runner.start()
        self.hub.emit(State(mad=cls.name, state=runner.state.value))
        return runner

    async def retire_mad(self, name: str, reason: str) -> None:
        """Answer what the MAD has queued, then refuse everything with the reason; its tools vanish."""
        runner = self.runners.get(name)
        if runner is None:
            return
        await runner.retire(reason)
        self.hub.emit(State(mad=name, state="retired", reason=reason))

    async def tools_changed(self) -> None:
        for listener in self.tools_listeners:
            await listener()

    def pause(self) -> None:
        """Every MAD stops taking work from its mailbox (a handler in progress finishes)."""
        for runner in self.runners.values():
            runner.pause()
        self.hub.emit(State(state="paused"))

    def resume(self) -> None:
        for runner in self.runners.values():
            runner.resume()
        self.hub.emit(State(state="running"))

    async def restart_mad(self, name: str) -> dict[str, Any]:
        """Restart one MAD by hand (a FAILED one too); UsageError for an unknown name."""
        runner = self.runners.get(name.lower().lstrip("@"))
        if runner is None:
            raise UsageError(f"no MAD named {name!r} (the MADs are {', '.join(self.runners)})")
        await runner.restart()
        return runner.status()

    # cognition and introspection ---------------------------------------------
    def cancel_llm(self, mad: str | None = None) -> dict[str, Any]:
        """Cancel the LLM calls in flight of `mad` (every MAD's when None) down to their HTTP requests: each
        caller is answered `#error cancelled` and an llm_cancelled event is recorded."""
        if mad:
            mad = mad.lower().lstrip("@")
            if mad not in self.runners:
                raise UsageError(f"no MAD named {mad!r} (the MADs are {', '.join(self.runners)})")
        gateway = self.services.get("llm")
        if gateway is None:
            raise UsageError("no LLM gateway is running here (Fiedler is not loaded)")
        return {"cancelled": gateway.cancel(mad)}

    def thought_engine(self, mad: str) -> ThoughtEngine:
        engine = self._engines.get(mad)
        if engine is None:
            engine = self._engines[mad] = ThoughtEngine(self, mad)
        return engine

    def directory(self) -> list[dict[str, Any]]:
        """Every participant with its liveness: HEALTHY, STALE or DISCONNECTED."""
        return introspection.directory(self)

    def status(self) -> dict[str, Any]:
        """Every MAD's state, placement, module hash, mailbox, counters and stage figures (and the nodes)."""
        return introspection.status(self)
