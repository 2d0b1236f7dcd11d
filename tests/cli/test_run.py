"""`mad run`: the ecosystem headless in a real process, one ready line, a clean stop on Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def test_run_prints_one_ready_line_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    env = {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_MASTER_KEY": "a" * 64,
           "MAD_SESSIONS": str(tmp_path / "sessions")}
    env.pop("MAD_PATH", None)
    proc = subprocess.Popen([sys.executable, "-m", "madtui", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("mad: ready in "), ready + proc.stderr.read()
        for name in ("rogers", "fiedler", "turing", "dewey", "horace"):
            assert name in ready
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "" and "stopped" in err
