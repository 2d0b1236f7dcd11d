"""A real model in the loop, as the workbench shows it: the reply grows in the pane, a call in flight shows its
model and seconds, Esc cancels it down to the HTTP request, ctrl+q during one quits cleanly.

The model is the fake OpenAI-compatible server on loopback; the ecosystem is a real `mad mcp` child.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mads.kernel.journal.reader import read_events
from mads.kernel.llm.fake_server import FakeLLMServer, Reply
from madtui.app import MadApp
from madtui.host import HostOptions
from madtui.replay_app import ReplayApp
from tests.helpers import leftover_children, mad_cli, screen_text, start_terminal, until

pytest.importorskip("openai")
WORDS = ["Alpha ", "beta ", "gamma ", "delta"]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


def model_env(server: FakeLLMServer, tmp_path: Path) -> dict[str, str]:
    return {"MAD_MASTER_KEY": "a" * 64, "OPENAI_BASE_URL": server.base_url, "MAD_MODEL": "fake-small",
            "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"), "MAD_PATH": ""}


def live_rows(app: MadApp, name: str) -> list[str]:
    """The rows under a pane's lines: what is under way."""
    traffic = app.main.deck.panes[name].traffic
    return [text for text, _ in traffic._live]


def elapsed_shown(app: MadApp) -> float:
    """The seconds the call in flight's row shows (0 when none)."""
    for row in live_rows(app, "horace"):
        found = re.search(r"thinking · (\d+\.\d) s", row)
        if found:
            return float(found.group(1))
    return 0.0


async def test_the_reply_grows_in_the_pane_and_esc_cancels_a_long_call(server: FakeLLMServer, tmp_path: Path) -> None:
    server.replies = [Reply(chunks=WORDS, delay=0.5), Reply(first_delay=6)]
    environ = {**os.environ, **model_env(server, tmp_path)}
    app = MadApp(HostOptions(home=tmp_path / "home", sessions=tmp_path / "sessions", provider="openai",
                             environ=environ))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.host.state == "running" and "horace" in app.main.deck.panes
                    and app.main.deck.panes["horace"].is_mounted, "the ecosystem started")
        await pilot.press(*"@Horace hello there", "enter")
        lengths: set[int] = set()

        def growing() -> bool:
            rows = live_rows(app, "horace")
            streamed = "".join(row.strip() for row in rows[1:])
            if streamed and streamed != "Alpha beta gamma delta":
                lengths.add(len(streamed))
            return "#success Alpha beta gamma delta" in " ".join(line.text for line in app.timeline.mads["horace"].lines)

        await until(pilot, growing, "the streamed reply", timeout=30)
        assert len(lengths) >= 2, f"the reply was seen at {sorted(lengths)} characters before its end"
        assert live_rows(app, "horace") == []  # answered: nothing under way

        await pilot.press(*"@Horace are you there?", "enter")
        await until(pilot, lambda: any("fake-small thinking · " in row for row in live_rows(app, "horace")),
                    "the call in flight shown with its model")
        await until(pilot, lambda: elapsed_shown(app) >= 1.0, "its seconds ticking")
        assert "1 LLM call in flight" in str(app.main.query_one("#status").render())
        await pilot.press("f2")
        await until(pilot, lambda: "LLM calls in flight · 1" in screen_text(app)
                    and "horace     fake-small · " in screen_text(app), "the call listed on the resources screen")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "back to the panes")
        app.main.deck.panes["horace"].traffic.focus()
        await pilot.press("escape")
        await until(pilot, lambda: server.disconnects >= 1, "the server saw the request closed")
        await until(pilot, lambda: any("→ @human #error cancelled" in line.text
                                       for line in app.timeline.mads["horace"].lines), "#error cancelled shown")
        assert live_rows(app, "horace") == []
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app.return_code is not None, "the app exited")
    assert app.return_code == 0
    kinds = [e["kind"] for e in read_events(app.journal)]
    assert "llm_cancelled" in kinds and kinds[-1] == "session_end"
    assert leftover_children(app.journal) == []


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")
def test_in_tmux_the_reply_grows_and_ctrl_q_during_a_call_quits_cleanly(server: FakeLLMServer, tmp_path: Path) -> None:
    server.replies = [Reply(chunks=WORDS, delay=0.5), Reply(first_delay=6)]
    term = start_terminal(tmp_path, model_env(server, tmp_path), ["tui", "--provider", "openai"], size=(80, 24))
    try:
        term.wait_for(lambda s: " · running · " in s and "horace" in s, "the ecosystem running")
        term.type("@Horace hello there")
        term.press("Enter")
        term.wait_for(lambda s: "Alpha beta" in s and "Alpha beta gamma delta" not in s, "the reply part way")
        term.wait_for(lambda s: "✦→ @human #success Alpha beta gamma" in s, "the whole reply (cropped at 80 columns)")
        term.type("@Horace are you there?")
        term.press("Enter")
        term.wait_for(lambda s: "fake-small thinking" in s, "the call in flight")
        term.press("C-q")
        assert term.exit_status() == "EXIT:0"
        screen = term.screen()
        assert "Traceback" not in screen and "Error" not in screen, screen
        (journal,) = (tmp_path / "sessions").glob("*.db")
        assert list(read_events(journal))[-1]["kind"] == "session_end"
        assert leftover_children(journal) == []
    finally:
        term.close()


async def test_a_streamed_session_replays_its_reply_growing_and_reruns_the_same(server: FakeLLMServer,
                                                                                tmp_path: Path) -> None:
    server.replies = [Reply(chunks=WORDS, delay=0.01)]
    env = {**os.environ, **model_env(server, tmp_path)}
    sent = mad_cli(env, "send", "@Horace hello there", "--provider", "openai")
    assert sent.returncode == 0 and "Alpha beta gamma delta" in sent.stdout, sent.stderr
    (journal,) = (tmp_path / "sessions").glob("*.db")
    chunks = list(read_events(journal, kind=["llm_chunk"]))
    assert [c["payload"]["text"] for c in chunks] == WORDS
    app = ReplayApp(journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.cursor is not None, "the recording open")
        seen = []
        for chunk in chunks[:3]:
            await app.move(chunk["seq"])
            await until(pilot, lambda: "horace" in app.main.deck.panes and app.main.deck.panes["horace"].is_mounted,
                        "Horace's pane")
            seen.append("".join(row.strip() + " " for row in live_rows(app, "horace")[1:]).strip())
        assert seen == ["Alpha", "Alpha beta", "Alpha beta gamma"]
        assert "fake-small thinking · " in live_rows(app, "horace")[0]
        await app.move(chunks[-1]["seq"] + 2)
        await until(pilot, lambda: live_rows(app, "horace") == [], "the answer in: nothing under way")
    rerun = mad_cli(env, "rerun", str(journal))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
