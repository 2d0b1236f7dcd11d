"""Start figures: how long a user waits, from typing the command, for `mad run` to be ready and for
`mad tui` to draw its first frame (interpreter start and imports included).

Each command runs as a real process, `mad tui` on a pseudo-terminal of 80x24; the baselines
are the bare interpreter printing a line and a one-Static Textual app drawing its first frame.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

from .harness import Sample, figure, percentile

_perf = time.perf_counter
TIMEOUT = 60.0
_ESCAPES = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")
"""Terminal escape sequences: what is left of a frame without them is the text it shows."""
TRIVIAL_APP = (
    "from textual.app import App\nfrom textual.widgets import Static\n"
    "class Trivial(App):\n    def compose(self):\n        yield Static('trivial ready')\nTrivial().run()\n"
)


@contextlib.contextmanager
def _home() -> Iterator[dict[str, str]]:
    """The environment of a fresh user: an empty MAD_HOME and sessions folder, a master key, a terminal."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as folder:
        yield {**os.environ, "MAD_HOME": str(Path(folder, "home")), "MAD_SESSIONS": str(Path(folder, "sessions")),
               "MAD_MASTER_KEY": "ab" * 32, "TERM": "xterm-256color"}


def seconds_to_line(command: list[str], marker: str, env: dict[str, str]) -> float:
    """Seconds from spawning the command until a line of its stdout holds the marker; then SIGINT."""
    started = _perf()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker in line:
                return _perf() - started
        raise RuntimeError(f"{command[2:]} ended (exit {proc.wait()}) without printing {marker!r}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def seconds_to_frame(command: list[str], marker: str, env: dict[str, str]) -> float:
    """Seconds from spawning the command on an 80x24 pseudo-terminal until its screen shows the marker."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = _perf()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while _perf() - started < TIMEOUT:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                seen += os.read(master, 65536)
            except OSError:  # the program ended and closed the terminal
                break
            if marker.encode() in _ESCAPES.sub(b"", seen):
                return _perf() - started
        shown = _ESCAPES.sub(b"", seen)[-200:].decode(errors="replace")
        raise RuntimeError(f"no {marker!r} on the screen of {command[2:]} (it showed {shown!r})")
    finally:
        with contextlib.suppress(OSError):
            os.write(master, b"\x11")  # ctrl+q
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)


@figure("run_ready", unit="s", target="value < 1.5", goal="value < 1.5", n=3, quick_n=2)
def run_ready(n: int) -> Sample:
    """Seconds from spawning `mad run` (recording on, defaults) to its ready line, median of n.

    Baseline: the bare interpreter spawned to print one line.
    """
    values, baselines = [], []
    for _ in range(n):
        with _home() as env:
            values.append(seconds_to_line([sys.executable, "-m", "madtui", "run"], "mad: ready", env))
            baselines.append(seconds_to_line([sys.executable, "-c", "print('ready')"], "ready", env))
    return Sample(percentile(values, 50), percentile(baselines, 50))


@figure("tui_start_paint", unit="s", target="value < 2", goal="value < 2", n=3, quick_n=2)
def tui_start_paint(n: int) -> Sample:
    """Seconds from spawning `mad tui` on an 80x24 terminal to a first frame showing its status line,
    median of n; its ecosystem child is still starting then. Each is quit with ctrl+q.

    Baseline: a one-Static Textual app spawned the same way, to its first frame.
    """
    values, baselines = [], []
    for _ in range(n):
        with _home() as env:
            values.append(seconds_to_frame([sys.executable, "-m", "madtui", "tui"], "mad ·", env))
            baselines.append(seconds_to_frame([sys.executable, "-c", TRIVIAL_APP], "trivial ready", env))
    return Sample(percentile(values, 50), percentile(baselines, 50))
