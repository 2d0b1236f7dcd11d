"""Streaming figures: a chunk of a model's reply from the server to the pane, and a streamed reply through `mad send`.

The model is `FakeLLMServer` (mads/kernel/llm/fake_server.py), run in a thread of this process on loopback, so the
time a chunk leaves it (`chunk_times`, perf_counter) and the time a frame shows it are on one clock.
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from madtui.app import MadApp
from madtui.host import HostOptions
from mads.kernel.llm.fake_server import FakeLLMServer, Reply

from .harness import Sample, figure, percentile
from .tui import SIZE, _children, _until, isolated

_perf = time.perf_counter
ROOT = Path(__file__).resolve().parents[1]
CHUNK_GAP = 0.1
"""Seconds between chunks in stream_to_screen: each chunk's way to the screen is timed on its own."""
_WORD = re.compile(r"w(\d+)")


async def _until_long(predicate, what: str, timeout: float = 60.0) -> None:
    """As tui._until, with room for a whole reply streaming on a loaded machine."""
    deadline = _perf() + timeout
    while not predicate():
        if _perf() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.005)


def _environ(server: FakeLLMServer, tmp: Path) -> dict[str, str]:
    return {**os.environ, "MAD_MASTER_KEY": "a" * 64, "OPENAI_BASE_URL": server.base_url, "MAD_MODEL": "fake-small",
            "MAD_HOME": str(tmp / "home"), "MAD_SESSIONS": str(tmp / "sessions"), "MAD_PATH": ""}


async def _sdk_arrivals(server: FakeLLMServer) -> list[float]:
    """perf_counter() when the bare openai SDK yields each chunk of the server's next reply."""
    import openai

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
    arrivals = []
    try:
        stream = await client.chat.completions.create(model="fake-small", stream=True,
                                                      messages=[{"role": "user", "content": "hello"}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(_perf())
    finally:
        await client.close()
    return arrivals


@figure("stream_to_screen", unit="ms", target="value < 50", goal="value < 50", n=40, quick_n=15)
async def stream_to_screen(n: int) -> Sample:
    """p95 ms from a chunk leaving the model server to the first frame of the workbench showing its text in the
    MAD's pane (a real `mad mcp` child, provider openai, Horace's Imperator), over n chunks CHUNK_GAP apart.
    The last chunk is left out: its answer may replace the streamed text in the same frame.

    Baseline: p95 ms from a chunk leaving the server to the bare openai SDK in this process yielding it.
    """
    words = [f"w{i} " for i in range(n + 1)]
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as folder, FakeLLMServer() as server:
        tmp = Path(folder)
        server.replies = [Reply(chunks=words, delay=CHUNK_GAP)]
        arrivals = await _sdk_arrivals(server)
        sent = [c.perf for c in server.chunk_times]
        baseline = [(got - left) * 1000 for got, left in zip(arrivals[:n], sent[:n], strict=True)]
        server.reset([Reply(chunks=words, delay=CHUNK_GAP)])

        app = MadApp(HostOptions(home=tmp / "home", sessions=tmp / "sessions", provider="openai",
                                 environ=_environ(server, tmp)))
        painted: dict[int, float] = {}
        display = app._display

        def timed_display(screen: object, renderable: object) -> None:
            display(screen, renderable)  # type: ignore[arg-type]
            pane = app.main.deck.panes.get("horace") if app.main.is_mounted else None
            if pane is None or not pane.is_mounted:
                return
            shown = _WORD.findall(" ".join(text for text, _ in pane.traffic._live))
            if shown:
                last = int(shown[-1])
                if last not in painted:
                    at = _perf()
                    for i in range(last + 1):
                        painted.setdefault(i, at)

        app._display = timed_display  # type: ignore[method-assign]
        async with isolated(), app.run_test(size=SIZE) as pilot:
            await _until(lambda: app.host.state == "running" and "horace" in app.main.deck.panes, "the ecosystem")
            await pilot.press(*"@Horace hello there", "enter")
            await _until_long(lambda: len(server.chunk_times) >= n + 1, "the whole reply streamed")
            await _until_long(lambda: n - 1 in painted, "the chunks painted")
            sent = [c.perf for c in server.chunk_times]
            await app.action_quit()
        await _until(lambda: not _children(), "the ecosystem child exited")
    latencies = [(painted[i] - sent[i]) * 1000 for i in range(n)]
    return Sample(percentile(latencies, 95), percentile(baseline, 95))


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = _perf()
    done = subprocess.run([sys.executable, "-m", "madtui", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    took = _perf() - started
    if done.returncode != 0:
        raise RuntimeError(f"mad {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return took


@figure("stream_overhead", unit="s", target="ratio <= 1.2", goal="ratio <= 1.2", n=20, quick_n=20)
async def stream_overhead(n: int) -> Sample:
    """Seconds of a reply of n chunks (50 ms apart) streamed through `mad send "@Horace ..." --provider openai`,
    less the process's own start and stop: the same `mad send --provider openai` of a deterministic command (no
    LLM call), which starts the same ecosystem and imports the same SDK.

    Baseline: the bare openai SDK streaming the same reply from the same server, in this process.
    """
    words = [f"w{i} " for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as folder, FakeLLMServer() as server:
        env = _environ(server, Path(folder))
        server.replies = [Reply(chunks=words, delay=0.05)]
        started = _perf()
        await _sdk_arrivals(server)
        bare = _perf() - started
        start_stop = _timed(["send", "@Horace list_files", "--provider", "openai", "--no-record"], env)
        whole = _timed(["send", "@Horace hello there", "--provider", "openai", "--no-record"], env)
    return Sample(max(whole - start_stop, 0.0), bare)
