"""`mad send` to a real model: on a terminal the reply is written as it streams, then only its figures;
through a pipe it is written whole, once."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from mads.kernel.llm.fake_server import FakeLLMServer, Reply
from tests.helpers import ROOT, mad_cli

pytest.importorskip("openai")


def test_on_a_terminal_the_reply_streams_and_is_not_written_twice(tmp_path) -> None:
    with FakeLLMServer([Reply(chunks=["Alpha ", "beta ", "gamma ", "delta"], delay=0.01)]) as server:
        env = {**os.environ, "MAD_MASTER_KEY": "a" * 64, "OPENAI_BASE_URL": server.base_url, "MAD_MODEL": "fake-small",
               "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"), "MAD_PATH": ""}
        main, child = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "madtui", "send", "@Horace hello there", "--provider",
                                    "openai", "--no-record"], stdout=child, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        os.close(child)
        out = b""
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
        os.close(main)
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
        shown = out.decode().replace("\r\n", "\n")
        assert "── horace ✦ streaming\nAlpha beta gamma delta\n── horace · imperator · 1 LLM calls" in shown, shown
        assert shown.count("Alpha beta gamma delta") == 1
        piped = mad_cli(env, "send", "@Horace hello there", "--provider", "openai", "--no-record")
        assert piped.returncode == 0 and "streaming" not in piped.stdout
        assert piped.stdout.count("Alpha beta gamma delta") == 1
