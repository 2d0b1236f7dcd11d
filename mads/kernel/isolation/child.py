"""The process of an isolated MAD: `python -m mads.kernel.isolation.child --fd N --mad NAME --limits JSON`.

It sets its limits before the MAD's module is loaded, loads the module from the text the
core sends (the exact version the core recorded), builds the MAD with a ChildContext, and
serves the core's requests (load, start, message, observe, tool, stop) until the channel
closes. `--describe PATH` instead prints what the module at PATH (its text on stdin) defines,
so the core learns an isolated module's MADs without ever running its code.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from ..discovery import load_path_module
from ..errors import MadError
from ..events import Log
from ..hub import current_mad
from ..mad import MAD
from ..message import Message
from ..reload import _in_self_check, _where
from ..schema import validate
from ..supervisor import one_line
from . import Isolation
from .channel import Channel
from .remote import description
from .child_context import ChildContext, current_correlation, current_request
from .sandbox import EXIT_MEMORY, apply_limits

THREAD_STACK = 4 * 1024 * 1024
"""Stack of each worker thread (sync tools): small, so threads fit in a small address space."""
WORKERS = 4


class ChannelLog(logging.Handler):
    """The MAD's log records, sent to the core as `log` events."""

    def __init__(self, child: Child) -> None:
        super().__init__(logging.INFO)
        self.child = child
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False) or self.child.channel is None:
            return
        self._local.busy = True
        try:
            tb = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else None
            event = Log(mad=self.child.name, correlation_id=current_correlation.get(), level=record.levelname.lower(),
                        logger=record.name, message=record.getMessage())
            if tb:
                event.traceback = tb
            loop = self.child.loop
            if loop is not None and threading.current_thread() is not threading.main_thread():
                loop.call_soon_threadsafe(self.child.channel.notify, "emit", event.to_dict())
            else:
                self.child.channel.notify("emit", event.to_dict())
        finally:
            self._local.busy = False


class Child:
    """Serves one MAD in this process."""

    def __init__(self, name: str, isolation: Isolation, home: Path) -> None:
        self.name = name
        self.isolation = isolation
        self.home = home
        self.channel: Channel | None = None
        self.ctx: ChildContext | None = None
        self.instance: MAD | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done = asyncio.Event()

    def fatal(self, exc: BaseException) -> None:
        """A MemoryError leaves the process in no state to go on: say why, and exit."""
        cause = f"memory limit {self.isolation.memory_mb} MB"
        if self.channel is not None:
            self.channel.notify("fatal", {"cause": cause})
        sys.stderr.write(f"{self.name}: {cause}: {type(exc).__name__}\n")
        sys.stderr.flush()
        os._exit(EXIT_MEMORY)

    async def serve(self, fd: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="mad-tool"))
        self.loop.set_exception_handler(self._loop_error)
        sock = socket.socket(fileno=fd)
        self.channel = await Channel.over(sock, self.handle, self.notice)
        self.ctx = ChildContext(self.channel, self.name, self.home)
        reader = asyncio.ensure_future(self.channel.run())
        stopped = asyncio.ensure_future(self.done.wait())
        await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
        await self.channel.drain()
        self.channel.close("the MAD stopped")
        for task in (reader, stopped):
            task.cancel()
        if self.ctx is not None:
            await self.ctx.end_background()
            self.ctx.close_state()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, MemoryError):
            self.fatal(exc)
        loop.default_exception_handler(context)

    def notice(self, method: str, params: dict[str, Any]) -> None:
        """The core sends no notices today; any it sends later is ignored by this version."""

    async def handle(self, method: str, params: dict[str, Any], request_id: int, parent: int | None) -> Any:
        current_request.set(request_id)
        current_correlation.set(params.get("correlation"))
        current_mad.set(self.name)
        try:
            return await self._handle(method, params)
        except MemoryError as exc:
            self.fatal(exc)
            raise

    async def _handle(self, method: str, params: dict[str, Any]) -> Any:
        if method == "load":
            return await self.load(Path(params["path"]), params["source"], bool(params.get("check")))
        instance = self.instance
        if instance is None:
            raise MadError(f"{self.name} is not loaded")
        if method == "start":
            await instance.on_start()
            return {"pid": os.getpid()}
        if method == "message":
            await instance.on_message(Message.from_dict(params["message"]), bool(params["addressed"]))
            return None
        if method == "observe":
            await instance.on_observe(Message.from_dict(params["message"]), params["conversation"])
            return None
        if method == "tool":
            return await self.tool(instance, params["tool"], params["arguments"])
        if method == "stop":
            try:
                await instance.on_stop()
            finally:
                assert self.ctx is not None
                await self.ctx.end_background()
                self.ctx.close_state()
                self.done.set()
            return None
        raise MadError(f"unknown request {method!r}")

    async def load(self, path: Path, source: str, check: bool) -> dict[str, Any]:
        """Load the module text, build the MAD, apply its migrations and (for a reload) its self-check."""
        module = load_path_module(path, source)
        cls = next((c for c in module.mads if c.name == self.name), None)
        if cls is None:
            raise MadError(f"{path} defines no MAD named {self.name!r}")
        assert self.ctx is not None
        try:
            instance = cls(self.ctx)
        except Exception as exc:
            raise MadError(f"{_where(exc, path)}: building {self.name} failed: {one_line(exc)}") from None
        db = self.ctx.state
        try:
            with db.atomic():
                if cls.migrations is not None:
                    cls.migrations.apply(db)
                checker = getattr(instance, "self_check", None) if check else None
                if checker is not None:
                    outcome = checker()
                    if inspect.isawaitable(outcome):
                        await outcome
        except Exception as exc:
            stage = "self_check" if _in_self_check(exc) else "migration"
            raise MadError(f"{_where(exc, path)}: {stage} failed: {one_line(exc)}") from None
        self.instance = instance
        return {"pid": os.getpid(), "tools": sorted(cls.tools)}

    async def tool(self, instance: MAD, name: str, arguments: dict[str, Any]) -> Any:
        spec = type(instance).tools.get(name)
        if spec is None:
            raise MadError(f"{self.name} has no tool {name!r}")
        assert spec.model is not None  # the real class, loaded here
        kwargs = validate(spec.name, spec.model, arguments)
        fn = getattr(instance, spec.method)
        if spec.is_async:
            result = await fn(**kwargs)
        else:
            result = await asyncio.to_thread(fn, **kwargs)
        return to_jsonable_python(result, fallback=str)


def describe(path: Path, source: str) -> dict[str, Any]:
    """What a module defines, as the core needs it to list and call its MADs without loading it."""
    return {"mads": [description(cls) for cls in load_path_module(path, source).mads]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mads.kernel.isolation.child")
    parser.add_argument("--limits", required=True, help="the Isolation as JSON")
    parser.add_argument("--fd", type=int, help="the channel's socket")
    parser.add_argument("--mad", help="the MAD this process runs")
    parser.add_argument("--home", help="MAD_HOME as the MAD sees it")
    parser.add_argument("--describe", metavar="PATH", help="describe the module at PATH (its text on stdin)")
    args = parser.parse_args(argv)
    isolation = Isolation(**json.loads(args.limits))
    threading.stack_size(THREAD_STACK)
    if args.describe:
        out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)  # whatever the module prints goes to stderr, never into the answer
        source = sys.stdin.read()
        apply_limits(isolation)
        try:
            answer = describe(Path(args.describe), source)
        except MadError as exc:
            answer = {"error": str(exc)}
        except MemoryError:
            answer = {"error": f"{args.describe}: memory limit {isolation.memory_mb} MB while loading"}
        out.write(json.dumps(answer))
        out.close()
        return 0
    apply_limits(isolation)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    child = Child(args.mad, isolation, Path(args.home))
    root = logging.getLogger()
    root.handlers[:] = [ChannelLog(child)]
    root.setLevel(logging.INFO)
    asyncio.run(child.serve(args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
