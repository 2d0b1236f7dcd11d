"""`mad mcp`: the ecosystem behind one MCP gateway, over stdio or streamable HTTP."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from mads.kernel.gateway import Gateway
from mads.kernel.gateway.transport import mcp_token, parse_address, serve_http, serve_stdio

from .options import ecosystem_options, gather, run_async, stop_on_signals, watch_option


@click.command()
@click.option("--http", "http_address", metavar="HOST:PORT", help="Serve streamable HTTP here instead of stdio.")
@click.option("--allow-remote", is_flag=True, help="Allow --http on a non-loopback address.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Append the recording to this journal (the TUI host chooses it).")
@watch_option
@ecosystem_options
def mcp(http_address: str | None, allow_remote: bool, journal: Path | None, no_watch: bool, **shared: Any) -> None:
    """Serve every MAD tool and the admin tools over MCP (stdio by default).

    Over HTTP every request needs `Authorization: Bearer <token>`: the token comes from
    MAD_MCP_TOKEN or is generated and printed once on stderr.

    \b
    Example: mad mcp --http 127.0.0.1:8765
    """
    options = gather(shared)

    async def body(**_: Any) -> None:
        address = parse_address(http_address, allow_remote) if http_address else None
        eco = options.ecosystem(watch=not no_watch)
        real_stderr = sys.stderr
        token, generated = mcp_token(eco.config.environ)
        eco.hub.redactor.add(token)
        with options.record(eco, "mcp", journal=journal):
            async with eco:
                gateway = Gateway(eco, client="mcp-http" if address else "mcp-stdio")
                if address is None:
                    await serve_stdio(gateway)
                    return

                def ready(port: int) -> None:
                    shown = f"; token {token} (set MAD_MCP_TOKEN to choose it)" if generated else ""
                    print(f"mad: MCP at http://{address[0]}:{port}/mcp{shown}", file=real_stderr, flush=True)

                stop = stop_on_signals()
                server = asyncio.ensure_future(serve_http(gateway, address[0], address[1], token, ready))
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for task in (server, stopper):
                    task.cancel()
                await asyncio.gather(server, stopper, return_exceptions=True)

    run_async(body)(debug=options.debug)
