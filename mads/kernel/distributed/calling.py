"""Requests between the processes of a distributed ecosystem: tool calls, kernel services (secrets, LLM), replies.

A part of the Node (it mixes this in). A request goes into the inbox of the MAD that answers
it; its answer comes back on the asking process's own reply stream, read by one task.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from pydantic_core import to_jsonable_python

from ..errors import MadError
from ..isolation.channel import decode_error, encode_error
from ..message import Message, new_id
from .keys import GROUP
from .sealing import seal

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ..supervisor import MADRunner

    from .directory import Directory
    from .keys import Keys
    from .sealing import Keypair

READ_BLOCK_MS = 1000
READ_COUNT = 32


class Calling:
    """Requests to other processes and the answers to them."""

    id: str
    keys: Keys
    redis: aioredis.Redis
    directory: Directory
    keypair: Keypair
    eco: Any
    _calls: dict[str, asyncio.Future[Any]]

    if TYPE_CHECKING:
        async def _steady(self, step: Callable[[], Awaitable[Any]]) -> Any: ...

        def _answered(self, inbox: str) -> None: ...

    # kernel services for other processes ------------------------------------------------
    async def _serve(self, runner: MADRunner, inbox: str, entry_id: str, kind: str, request: dict[str, Any]) -> None:
        """A secret or an LLM completion asked by another process, served here where Turing or Fiedler runs."""
        answer: dict[str, Any] = {"id": request["id"], "ok": True}
        try:
            if kind == "secret":
                mad = request["mad"]
                if request["node"] not in self.directory.hosts.get(mad, []):
                    await self.directory.refresh()
                    if request["node"] not in self.directory.hosts.get(mad, []):
                        raise MadError(f"{request['node']} does not host {mad}")
                keeper = self.eco.services.get("secrets")
                if keeper is None:
                    raise MadError("no secrets keeper runs here")
                value = await keeper.reveal(request["name"], mad)
                public = self.directory.nodes.get(request["node"], {}).get("public")
                if not public:
                    raise MadError(f"{request['node']} has no key to seal the secret for")
                answer["result"] = seal(value, {request["node"]: public})
            else:
                gateway = self.eco.services.get("llm")
                if gateway is None:
                    raise MadError("no LLM gateway runs here")
                response = await gateway.complete(request["mad"], request["messages"], tools=request.get("tools"),
                                                  model=request.get("model"))
                answer["result"] = response.to_dict()
        except Exception as exc:
            answer = {"id": request["id"], "ok": False, "error": encode_error(exc)}

        async def reply() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.keys.replies(request["node"]), {"kind": "result", "answer": json.dumps(answer)})
                pipe.xack(inbox, GROUP, entry_id)
                pipe.xdel(inbox, entry_id)
                await pipe.execute()

        await self._steady(reply)
        self._answered(inbox)

    async def call(self, mad: str, tool: str, arguments: dict[str, Any], *, caller: str,
                   correlation: str | None, timeout: float, secret_params: frozenset[str] = frozenset()) -> Any:
        """Call a tool of a MAD hosted by another process; MadError naming the MAD when nobody answers."""
        arguments = to_jsonable_python(arguments, fallback=str)
        if secret_params:
            keys = self.directory.public_keys(mad)
            arguments = {k: seal(v, keys) if k in secret_params and isinstance(v, str) else v
                         for k, v in arguments.items()}
        call_id = new_id()
        body = {"id": call_id, "tool": tool, "arguments": arguments, "caller": caller, "correlation": correlation,
                "reply": self.id, "deadline": time.time() + timeout}
        return await self._request(mad, "call", {"call": json.dumps(body)}, call_id, timeout, tool)

    async def secret(self, mad: str, name: str, keeper: str, timeout: float) -> str:
        """A secret's value for a MAD of this process, from the process hosting Turing (sealed on the way)."""
        request: dict[str, Any] = {"id": new_id(), "mad": mad, "name": name, "node": self.id}
        sealed = await self._request(keeper, "secret", {"request": json.dumps(request)}, request["id"], timeout,
                                     f"the secret {name}")
        return self.keypair.open(sealed, self.id)

    async def llm(self, mad: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                  model: str | None, keeper: str, timeout: float) -> dict[str, Any]:
        request: dict[str, Any] = {"id": new_id(), "mad": mad, "messages": messages, "tools": tools, "model": model,
                                   "node": self.id}
        answer: dict[str, Any] = await self._request(keeper, "llm", {"request": json.dumps(request)}, request["id"],
                                                     timeout, "an LLM completion")
        return answer

    async def _request(self, mad: str, kind: str, fields: dict[str, str], request_id: str, timeout: float,
                       what: str) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[request_id] = future
        try:
            entry: Any = {"kind": kind, **fields}
            await self._steady(lambda: self.redis.xadd(self.keys.inbox(mad), entry))
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            hosted = self.directory.hosts.get(mad)
            why = f"no running process hosts {mad}" if not hosted else f"{mad} did not answer"
            raise MadError(f"{what}: no answer within {timeout:g} s ({why})") from None
        finally:
            self._calls.pop(request_id, None)

    async def expect_replies(self, message_id: str, seconds: float) -> None:
        """Replies to this message are to come to this process (whichever process publishes them)."""
        await self._steady(lambda: self.redis.set(self.keys.waiting(message_id), self.id, ex=max(1, int(seconds) + 5)))

    async def _read_replies(self) -> None:
        stream = self.keys.replies(self.id)
        last = "0"  # the stream is this process's own: whatever is in it is for it
        while True:
            async def read() -> Any:
                return await self.redis.xread({stream: last}, count=READ_COUNT, block=READ_BLOCK_MS)

            found = await self._steady(read)
            done: list[str] = []
            for _stream, entries in found or []:
                for entry_id, fields in entries:
                    last = entry_id
                    done.append(entry_id)
                    self._arrived(fields)
            if done:
                await self._steady(lambda: self.redis.xdel(stream, *done))

    def _arrived(self, fields: dict[str, str]) -> None:
        if fields.get("kind") == "reply":
            self.eco.reply_arrived(Message.from_dict(orjson.loads(fields["message"])))
            return
        answer = json.loads(fields["answer"])
        future = self._calls.get(answer["id"])
        if future is None or future.done():
            return
        if answer["ok"]:
            future.set_result(answer.get("result"))
        else:
            future.set_exception(decode_error(answer["error"]))

