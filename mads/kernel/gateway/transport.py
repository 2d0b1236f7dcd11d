"""Serving the gateway: over stdio (stdout kept for the protocol) or streamable HTTP with a bearer token."""
from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.stdio import stdio_server

from ..errors import UsageError
from ..events import ExternalCall
from ..hub import EventHub
from ..journal.capture import StreamToEvents
from .server import Gateway

log = logging.getLogger("mads.kernel")


async def serve_stdio(gateway: Gateway) -> None:
    """Serve until the client closes stdin; stray prints become log events, never protocol bytes."""
    lowlevel = gateway._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        saved = sys.stdout
        sys.stdout = StreamToEvents(gateway.eco.hub, "stdout")  # type: ignore[assignment]
        try:
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        finally:
            sys.stdout.flush()
            sys.stdout = saved


def parse_address(address: str, allow_remote: bool) -> tuple[str, int]:
    """HOST:PORT, loopback only unless allow_remote; UsageError says why not."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise UsageError(f"--http needs HOST:PORT, got {address!r} (for example 127.0.0.1:8765)")
    host = host.strip("[]") or "127.0.0.1"
    if not allow_remote:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(f"{host} is not a loopback address; add --allow-remote to serve other machines")
    return host, int(port_text)


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>`; else 401, recorded."""

    def __init__(self, app: Any, token: str, hub: EventHub) -> None:
        self.app = app
        self.token = token.encode()
        self.hub = hub
        self.rejected = 0

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self.token):
            await self.app(scope, receive, send)
            return
        self.rejected += 1
        client = scope.get("client") or ("?", 0)
        self.hub.emit(ExternalCall(tool=None, client=f"{client[0]}:{client[1]}", ok=False, status=401,
                                   error="missing or wrong bearer token", path=scope.get("path")))
        body = b'{"error": "unauthorized: send Authorization: Bearer <token> (MAD_MCP_TOKEN)"}'
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


def mcp_token(environ: dict[str, str] | Any) -> tuple[str, bool]:
    """The bearer token from MAD_MCP_TOKEN, or a new one; the flag says it was generated."""
    token = environ.get("MAD_MCP_TOKEN")
    if token:
        return token, False
    return secrets.token_urlsafe(32), True


async def serve_http(gateway: Gateway, host: str, port: int, token: str,
                     on_ready: Callable[[int], None] | None = None) -> None:
    """Streamable HTTP at http://HOST:PORT/mcp behind the bearer token, until cancelled."""
    import uvicorn

    app = BearerAuth(gateway.streamable_http_app(host=host), token, gateway.eco.hub)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            on_ready(bound)

        server.startup = startup  # type: ignore[method-assign]
    await server.serve()
