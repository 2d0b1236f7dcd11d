"""A local fake LLM server for tests, benchmarks and a human at a terminal.

It speaks the OpenAI chat-completions API (JSON and SSE streams, as OpenAI, Ollama, vLLM and llama.cpp serve it) and
Anthropic's Messages API (JSON and SSE), from a script of `Reply`s, and records what it was asked, when each chunk
left, and which clients went away before the end:

    with FakeLLMServer([Reply("Hello", delay=0.05), Reply(fault="429", retry_after=2)]) as server:
        environ = {"OPENAI_BASE_URL": server.base_url, "MAD_MODEL": "fake-small"}
        ...
        assert server.wait_until(lambda s: s.disconnects >= 1, timeout=5)

Run `python -m mads.kernel.llm.fake_server --delay 0.05` to point OPENAI_BASE_URL (or ANTHROPIC_BASE_URL) at one.
It runs uvicorn in a thread of its own on 127.0.0.1, so sync and async tests use it alike.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .fake_wire import (
    DEFAULT_MODELS, FAULTS, Reply, anthropic_events, anthropic_message, cut_point, error_body, fault_body,
    openai_completion, openai_events, status_of,
)

__all__ = ["DEFAULT_MODELS", "FAULTS", "ChunkTime", "FakeLLMServer", "Recorded", "Reply", "closed_port_url", "main"]

class ChunkTime(NamedTuple):
    """When a streamed text chunk was written to the socket."""

    perf: float
    """time.perf_counter() (same process: compare with the client's perf_counter)."""
    wall: float
    """time.time() (another process)."""
    text: str


class Recorded(NamedTuple):
    """A request the server received."""

    method: str
    path: str
    api: str
    """"openai" or "anthropic" (told by the anthropic-version / x-api-key headers)."""
    body: Any
    """The parsed JSON body (None for a GET)."""


def closed_port_url(path: str = "/v1") -> str:
    """A loopback URL where nothing listens (a port just bound and released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class _Cut(Exception):
    """Raised inside the app to drop the connection mid-response (uvicorn closes the transport)."""


class _QuietCut(logging.Filter):
    """Keeps uvicorn from logging the deliberate cuts as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Cut))


_QUIET = _QuietCut()


class _Watch:
    """Notices the client going away (http.disconnect) and the server stopping, while the handler waits."""

    def __init__(self, receive: Callable[[], Any], closing: asyncio.Event) -> None:
        self.gone = asyncio.Event()
        self.closing = closing
        self.task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Callable[[], Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`; _Gone if the client left, _Cut if the server is stopping."""
        if seconds > 0 and not (self.gone.is_set() or self.closing.is_set()):
            waiters = [asyncio.ensure_future(self.gone.wait()), asyncio.ensure_future(self.closing.wait())]
            try:
                await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        else:
            await asyncio.sleep(0)  # let the watcher see a disconnect that already happened
        if self.gone.is_set():
            raise _Gone
        if self.closing.is_set():
            raise _Cut("the server is stopping")

    def stop(self) -> None:
        self.task.cancel()


class _Gone(Exception):
    """The client went away before the end."""


class FakeLLMServer:
    """An OpenAI- and Anthropic-compatible server on 127.0.0.1 in a background thread, answering from `replies`."""

    def __init__(self, replies: Iterable[Reply] | None = None, *, models: Iterable[str] = DEFAULT_MODELS,
                 port: int = 0, api_key: str | None = None) -> None:
        self._replies: list[Reply] = list(replies) if replies is not None else [Reply()]
        self._cursor = 0
        self._served = 0
        self.models: list[str] = list(models)
        """Model ids served; a request for any other model is answered 404 model_not_found."""
        self.api_key = api_key
        """When set, a request with another key is answered 401."""
        self.requests: list[Recorded] = []
        self.disconnects = 0
        """Responses whose client went away before their end."""
        self.disconnected = threading.Event()
        """Set at each disconnect (clear it to wait for the next one)."""
        self.chunk_times: list[ChunkTime] = []
        self.changed = threading.Condition()
        """Notified whenever a request, chunk or disconnect is recorded (see wait_until)."""
        self._port = port
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._state = "new"
        self._failure: BaseException | None = None
        self._ids = 0

    # The script -------------------------------------------------------------------------------------------------

    @property
    def replies(self) -> list[Reply]:
        """The script: consumed one per completion request (a reply with times=N answers N), the last one repeats."""
        return self._replies

    @replies.setter
    def replies(self, replies: Iterable[Reply]) -> None:
        with self.changed:
            self._replies = list(replies)
            self._cursor = self._served = 0

    def reset(self, replies: Iterable[Reply] | None = None) -> None:
        """Forget what was recorded and start a new script (the default reply when None)."""
        with self.changed:
            self._replies = list(replies) if replies is not None else [Reply()]
            self._cursor = self._served = 0
            self.requests.clear()
            self.chunk_times.clear()
            self.disconnects = 0
            self.disconnected.clear()

    def _next_reply(self) -> Reply:
        with self.changed:
            if not self._replies:
                return Reply()
            self._cursor = min(self._cursor, len(self._replies) - 1)
            reply = self._replies[self._cursor]
            self._served += 1
            if self._served >= max(1, reply.times) and self._cursor < len(self._replies) - 1:
                self._cursor += 1
                self._served = 0
            return reply

    # Addresses and waiting ----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the fake LLM server is not started")
        return self._socket.getsockname()[1]

    @property
    def base_url(self) -> str:
        """For OPENAI_BASE_URL: http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        """For ANTHROPIC_BASE_URL: http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def wait_until(self, predicate: Callable[[FakeLLMServer], bool], timeout: float = 5.0) -> bool:
        """Block until predicate(server) holds (re-checked at each recorded event); False after the timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def _record(self, change: Callable[[], None]) -> None:
        with self.changed:
            change()
            self.changed.notify_all()

    # Life -------------------------------------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Listen and serve; returns once the server accepts connections."""
        import uvicorn

        if self._state != "new":
            raise RuntimeError(f"the fake LLM server is {self._state}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._socket = sock
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="off", http="h11", ws="none",
                                interface="asgi3", proxy_headers=False, timeout_graceful_shutdown=2)
        owner = self

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                owner._loop = asyncio.get_running_loop()
                owner._closing = asyncio.Event()
                await super().startup(sockets)
                owner._set_state("serving" if self.started else "failed")

        self._server = Server(config)
        self._thread = threading.Thread(target=self._run, name=f"fake-llm-server:{self.port}", daemon=True)
        self._state = "starting"
        self._thread.start()
        with self.changed:
            self.changed.wait_for(lambda: self._state != "starting", timeout=30)
        if self._state != "serving":
            self.stop()
            raise RuntimeError(f"the fake LLM server did not start: {self._failure or self._state}")
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 (reported to start())
            self._failure = exc
        finally:
            self._set_state("stopped")

    def _set_state(self, state: str) -> None:
        def change() -> None:
            if self._state in ("starting", "serving", "stopping"):
                self._state = state
        self._record(change)

    def stop(self) -> None:
        """End open streams (cut), stop serving and join the thread."""
        if self._thread is None:
            return
        if self._state in ("starting", "serving"):
            self._set_state("stopping")
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(closing.set)
            except RuntimeError:  # the loop has just closed
                pass
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeLLMServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # The app ----------------------------------------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        from starlette.requests import ClientDisconnect, Request

        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers = request.headers
        api = "anthropic" if ("anthropic-version" in headers or "x-api-key" in headers) else "openai"
        method, path = scope["method"], scope["path"].rstrip("/")
        body: Any = None
        if method == "POST":
            try:
                raw = await request.body()
            except ClientDisconnect:  # gone while sending its request
                self._record(self._count_disconnect)
                return
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._record(lambda: self.requests.append(Recorded(method, path, api, raw.decode(errors="replace"))))
                await _json(send, 400, error_body(api, 400, "the body is not JSON", "invalid_request_error"))
                return
        self._record(lambda: self.requests.append(Recorded(method, path, api, body)))
        if self.api_key is not None:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
            if given != self.api_key:
                await _json(send, 401, fault_body(api, "401", ""))
                return
        if method == "GET" and path in ("/v1/models", "/models"):
            await _json(send, 200, self._models_body(api))
        elif method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            await self._complete(send, receive, "openai", body)
        elif method == "POST" and path in ("/v1/messages", "/messages"):
            await self._complete(send, receive, "anthropic", body)
        else:
            await _json(send, 404, error_body(api, 404, f"no route {method} {path}", "not_found_error"))

    def _models_body(self, api: str) -> dict[str, Any]:
        if api == "anthropic":
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z",
                     "lifecycle": "active"} for m in self.models]
            return {"data": data, "has_more": False, "first_id": self.models[0] if self.models else None,
                    "last_id": self.models[-1] if self.models else None}
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                           for m in self.models]}

    async def _complete(self, send: Callable[[Any], Any], receive: Callable[[], Any], api: str,
                        body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        if model not in self.models:
            await _json(send, 404, fault_body(api, "404", model))
            return
        reply = self._next_reply()
        assert self._closing is not None
        watch = _Watch(receive, self._closing)
        finished = False
        try:
            stream = bool(body.get("stream"))
            fault = reply.fault
            if fault == "refused":
                finished = True
                await _json(send, 500, error_body(api, 500, "the fake server cannot refuse a connection it accepted: "
                                                        "point the client at closed_port_url()", "server_error"))
                return
            if fault and fault not in ("cut", "truncated", "bad_tool_json"):
                await watch.pause(reply.first_delay)
                headers = {}
                if reply.retry_after is not None:
                    headers["retry-after"] = f"{reply.retry_after:g}"
                finished = True
                await _json(send, status_of(fault), fault_body(api, fault, model), headers)
                return
            self._ids += 1
            number = self._ids
            if not stream:
                await watch.pause(reply.first_delay)
                if fault in ("cut", "truncated"):
                    await _start(send, 200, "application/json")
                    await send({"type": "http.response.body", "body": b'{"id": "cut', "more_body": True})
                    raise _Cut("cut")
                data = (openai_completion if api == "openai" else anthropic_message)(reply, model, body, number)
                finished = True
                await _json(send, 200, data)
                return
            events = (openai_events if api == "openai" else anthropic_events)(reply, model, body, number)
            await _start(send, 200, "text/event-stream")
            await watch.pause(reply.first_delay)
            cut_at = cut_point(events) if fault in ("cut", "truncated") else None
            sent_text = 0
            for index, (data, text) in enumerate(events):
                if index == cut_at:
                    if fault == "cut":
                        raise _Cut("cut")
                    finished = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                if text is not None and sent_text and reply.delay:
                    await watch.pause(reply.delay)
                elif index:
                    await watch.pause(0)
                last = index == len(events) - 1
                if last:
                    finished = True
                if text is not None:  # stamped as it is handed to the socket (uvicorn writes it at once)
                    sent_text += 1
                    stamp = ChunkTime(time.perf_counter(), time.time(), text)
                    self._record(lambda stamp=stamp: self.chunk_times.append(stamp))
                await send({"type": "http.response.body", "body": data, "more_body": not last})
            if not events:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except _Gone:
            pass
        finally:
            watch.stop()
            if watch.gone.is_set() and not finished:
                self._record(self._count_disconnect)

    def _count_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    # Running it by hand -----------------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until Ctrl-C (the CLI); starts the server if it is not started."""
        if self._state == "new":
            self.start()
        try:
            thread = self._thread
            while thread is not None and thread.is_alive():
                thread.join(timeout=3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


async def _start(send: Callable[[Any], Any], status: int, content_type: str,
                 headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", content_type.encode())]
    if content_type == "text/event-stream":
        raw.append((b"cache-control", b"no-cache"))
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _json(send: Callable[[Any], Any], status: int, data: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(data).encode()
    await _start(send, status, "application/json", {"content-length": str(len(body)), **(headers or {})})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mads.kernel.llm.fake_server",
                                     description="A fake OpenAI- and Anthropic-compatible LLM server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between chunks (default 0.05)")
    parser.add_argument("--first-delay", type=float, default=0.0, help="seconds before the first chunk")
    parser.add_argument("--text", default="Hello there, human. This is a fake model streaming its answer "
                                          "word by word.", help="the reply's text")
    args = parser.parse_args(argv)
    server = FakeLLMServer([Reply(args.text, chunks=re.findall(r"\s*\S+", args.text), delay=args.delay,
                                  first_delay=args.first_delay)], port=args.port)
    server.start()
    print(f"fake LLM server at {server.base_url} (models: {', '.join(server.models)}); Ctrl-C stops it", flush=True)
    print(f"  OPENAI_BASE_URL={server.base_url} MAD_MODEL={server.models[0]}", flush=True)
    print(f"  ANTHROPIC_BASE_URL={server.anthropic_url} ANTHROPIC_API_KEY=fake MAD_MODEL={server.models[0]}",
          flush=True)
    server.serve_forever()

if __name__ == "__main__":
    main()
