"""Shared fixtures: an ecosystem in a temporary MAD_HOME, started and stopped around a test."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mads.kernel import MAD, Config, Ecosystem, ListSink
from tests.helpers import RedisServer


@pytest.fixture
def make_ecosystem(tmp_path: Path) -> Callable[..., Any]:
    """Build an ecosystem in tmp_path; `mads=[...]` for test MADs, `only=[...]` for package MADs."""

    @asynccontextmanager
    async def factory(mads: list[type[MAD]] | None = None, *, only: list[str] | None = None,
                      environ: dict[str, str] | None = None, **config: Any) -> AsyncIterator[Ecosystem]:
        cfg = Config(home=tmp_path / "home", include_package=only is not None, only=only,
                     environ=environ or {}, restart_backoff=0.001, **config)
        eco = Ecosystem(cfg, mads=mads)
        eco.events = ListSink()  # type: ignore[attr-defined]
        eco.hub.add_sink(eco.events)  # type: ignore[attr-defined]
        async with eco:
            yield eco

    return factory


@pytest.fixture
async def host_listener() -> AsyncIterator[tuple[int, list[str]]]:
    """A TCP server on the host's 127.0.0.1: its port, and a list that notes each connection it gets."""
    reached: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append("reached")
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], reached
    server.close()
    await server.wait_closed()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, stopped at the end."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
