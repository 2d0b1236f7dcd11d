"""The channel between the core and an isolated MAD's process: JSON frames over one socket, calls both ways.

Why not MCP: the MAD's context needs calls from the child to the core as much as the other
way (publish, ask, llm, secret, think), while MCP's server-to-client requests are limited to
sampling, elicitation and roots; and a frame of orjson over a socketpair costs tens of
microseconds where an isolated call must stay under a millisecond.

A frame is a 4-byte big-endian length and a JSON object: a request `{id, method, params, for?}`
(`for` names the request of the other side it serves, so that side can tell its work from
waiting), a response `{id, result}` or `{id, error}`, or a notice `{method, params}`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from .. import errors
from ..errors import MadError, RemoteFailure

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
"""The largest frame either side accepts (a tool's arguments or result of 256 MB)."""

Handler = Callable[[str, dict[str, Any], int, "int | None"], Awaitable[Any]]
"""Answers a request: (method, params, its id, the id of the other side's request it serves, if any)."""
Notice = Callable[[str, dict[str, Any]], None]


class ChannelClosed(Exception):
    """The other side is gone; every call still waiting fails with this."""


_KNOWN_ERRORS: dict[str, type[MadError]] = {
    cls.__name__: cls for cls in (errors.MadError, errors.UsageError, errors.ArgumentError, errors.ToolError,
                                  errors.MADUnavailable)
}


def encode_error(exc: BaseException) -> dict[str, Any]:
    """An exception as plain data: a MadError keeps its class and exit code, anything else is a crash."""
    if isinstance(exc, MadError):
        name = type(exc).__name__
        known = name if name in _KNOWN_ERRORS else next(
            (base.__name__ for base in type(exc).__mro__ if base.__name__ in _KNOWN_ERRORS), "MadError")
        return {"kind": "mad", "type": known, "message": str(exc), "exit_code": exc.exit_code}
    if isinstance(exc, RemoteFailure):
        return {"kind": "crash", "message": str(exc), "traceback": exc.remote_traceback}
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return {"kind": "crash", "message": line,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def decode_error(data: dict[str, Any]) -> Exception:
    """The exception an encoded error stands for, to raise on this side."""
    message = str(data.get("message") or "failed")
    if data.get("kind") == "mad":
        cls = _KNOWN_ERRORS.get(str(data.get("type")), MadError)
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        exc.exit_code = int(data.get("exit_code") or cls.exit_code)
        return exc
    return RemoteFailure(message, data.get("traceback"))


def _dumps(frame: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(frame, default=str)
    except TypeError:  # integers past 64 bits, lone surrogates: the standard library writes them
        return json.dumps(frame, default=str, ensure_ascii=True).encode()


class Channel:
    """Calls and notices over a stream; `run()` reads until the other side closes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler,
                 notice: Notice) -> None:
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._notice = notice
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._next = 0
        self.closed: str | None = None
        """Why the channel closed, once it has."""

    @classmethod
    async def over(cls, sock: Any, handler: Handler, notice: Notice) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock, limit=2 ** 20)
        return cls(reader, writer, handler, notice)

    # reading -------------------------------------------------------------------
    async def run(self) -> None:
        """Read frames until the stream ends; then fail every call still waiting."""
        reason = "the other side closed the channel"
        try:
            read = self._reader.readexactly
            while True:
                (size,) = HEADER.unpack(await read(4))
                if size > MAX_FRAME:
                    reason = f"a frame of {size} bytes is over the limit"
                    break
                self._dispatch(orjson.loads(await read(size)))
        except (asyncio.IncompleteReadError, ConnectionError, orjson.JSONDecodeError) as exc:
            if isinstance(exc, orjson.JSONDecodeError):
                reason = f"an unreadable frame: {exc}"
        finally:
            self.close(reason)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        method = frame.get("method")
        if method is None:
            future = self._pending.pop(frame.get("id", -1), None)
            if future is not None and not future.done():
                error = frame.get("error")
                if error is not None:
                    future.set_exception(decode_error(error))
                else:
                    future.set_result(frame.get("result"))
            return
        if "id" not in frame:
            self._notice(method, frame.get("params") or {})
            return
        task = asyncio.get_running_loop().create_task(self._answer(frame["id"], method, frame))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, request_id: int, method: str, frame: dict[str, Any]) -> None:
        try:
            result = await self._handler(method, frame.get("params") or {}, request_id, frame.get("for"))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller as data
            self._send({"id": request_id, "error": encode_error(exc)})
            return
        self._send({"id": request_id, "result": result})

    # writing -------------------------------------------------------------------
    def start(self, method: str, params: dict[str, Any], parent: int | None = None
              ) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; returns its id and the future of its result (ChannelClosed if the other side goes)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.closed is not None:
            future.set_exception(ChannelClosed(self.closed))
            return -1, future
        self._next += 1
        request_id = self._next
        frame: dict[str, Any] = {"id": request_id, "method": method, "params": params}
        if parent is not None:
            frame["for"] = parent
        self._pending[request_id] = future
        self._send(frame)
        return request_id, future

    async def request(self, method: str, params: dict[str, Any], parent: int | None = None) -> Any:
        request_id, future = self.start(method, params, parent)
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.closed is None:
            self._send({"method": method, "params": params})

    def _send(self, frame: dict[str, Any]) -> None:
        if self.closed is not None:
            return
        body = _dumps(frame)
        try:
            self._writer.write(HEADER.pack(len(body)) + body)
        except (ConnectionError, RuntimeError) as exc:
            self.close(f"the channel broke: {exc}")

    async def drain(self) -> None:
        if self.closed is None:
            try:
                await self._writer.drain()
            except ConnectionError as exc:
                self.close(f"the channel broke: {exc}")

    def close(self, reason: str) -> None:
        """Close the channel; every call still waiting fails with ChannelClosed(reason)."""
        if self.closed is not None:
            return
        self.closed = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelClosed(reason))
        self._pending.clear()
        for task in list(self._answering):
            task.cancel()
        with contextlib.suppress(RuntimeError):  # the loop is closing already
            self._writer.close()
