"""The workbench over a distributed ecosystem: every MAD with the process hosting it, each process's CPU and RSS."""
from __future__ import annotations

import os
from pathlib import Path

from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.screens.resources import process_text
from tests.helpers import MadNode, RedisServer, needs_redis, wait_for

pytestmark = needs_redis


async def test_each_pane_names_its_process_and_each_process_has_its_figures(redis_server: RedisServer,
                                                                           tmp_path: Path) -> None:
    first = MadNode(redis_server.url, "rogers,dewey", tmp_path / "node1")
    second = MadNode(redis_server.url, "horace", tmp_path / "node2")
    try:
        app = MadApp(HostOptions(home=tmp_path / "tui", sessions=tmp_path / "sessions", bus=redis_server.url,
                                 environ={**os.environ, "MAD_MASTER_KEY": "ab" * 32}))
        async with app.run_test(size=(160, 40)):
            await wait_for(lambda: {"rogers", "dewey", "horace"} <= set(app.main.deck.panes)
                           and all(app.timeline.mads[n].node for n in ("rogers", "dewey", "horace"))
                           and len(app.timeline.nodes) >= 3, timeout=30, what="every MAD with its process")
            hosts = {name: app.timeline.mads[name].node for name in ("rogers", "dewey", "horace")}
            assert hosts["rogers"] == hosts["dewey"] != hosts["horace"]
            assert hosts["horace"].split(":")[1] == str(second.process.pid)
            header = str(app.main.deck.panes["horace"].query_one("#title").content)
            assert f":{second.process.pid}" in header
            lines = process_text(app.timeline).splitlines()
            assert lines[0].startswith("process · ") and "hosts no MAD" in lines[0]
            assert any(line.endswith("· dewey, rogers") and f":{first.process.pid} · CPU" in line for line in lines)
            assert any(line.endswith("· horace") and f":{second.process.pid} · CPU" in line for line in lines)
    finally:
        second.stop()
        first.stop()
