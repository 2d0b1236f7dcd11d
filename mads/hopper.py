"""Hopper, the code runner: each run a fresh process, under Hopper's own limits, with no network and a folder of its own.

Hopper itself runs isolated (its own process, inside bubblewrap when installed). A run goes
one wall further: inside Hopper's sandbox another bubblewrap makes everything read-only but
the run's temporary work folder, with no network; without bubblewrap the run has the limits
only, and its result says so (`sandbox: rlimits`).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mads.kernel import MAD, Isolation, ToolError, tool
from mads.kernel.isolation.sandbox import nested_command

MAX_TIMEOUT = 60.0
"""The longest a run may take, in seconds."""
MAX_OUTPUT = 1_000_000
"""Characters of stdout and of stderr kept from a run; the rest is cut with a note."""
LAUNCH = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0); "
          "os.execv(sys.executable, [sys.executable, '-I', *sys.argv[1:]])")
"""Die with Hopper (PR_SET_PDEATHSIG, kept across exec), then become the run: `python -I main.py`."""


class Hopper(MAD):
    """Runs code in a sandbox: a fresh process per run, limited, with no network and a temporary folder."""

    isolation = Isolation(call_timeout=MAX_TIMEOUT + 30)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._nested: bool | None = None

    @tool
    def run_python(self, code: str, timeout: float = 10, stdin: str = "") -> dict[str, Any]:
        """Run Python code in a fresh sandboxed process.

        Returns stdout, stderr, exit_code, timed_out, duration_s, cpu_s and max_rss_mb. The code runs
        with Hopper's limits (memory, CPU), no network, and may write only in its own temporary folder
        (its working folder, also TMPDIR), which is removed afterwards.
        """
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ToolError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {timeout:g}")
        work = Path(tempfile.mkdtemp(prefix="hopper-"))
        try:
            (work / "main.py").write_text(code, encoding="utf-8")
            command = [sys.executable, "-I", "-c", LAUNCH, "main.py"]
            sandboxed = self._sandboxed(command, work)
            result = run(sandboxed or command, work, stdin, timeout)
            result["sandbox"] = "bwrap" if sandboxed else "rlimits"
            return result
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _sandboxed(self, command: list[str], work: Path) -> list[str] | None:
        """The run inside a bubblewrap of its own, when bubblewrap works here (checked once)."""
        if os.environ.get("MAD_SANDBOX") != "bwrap":
            return None
        if self._nested is None:
            probe = nested_command(["true"], workdir=work)
            self._nested = probe is not None and subprocess.run(
                probe, capture_output=True, timeout=10, check=False).returncode == 0
            if not self._nested:
                self.ctx.log.warning("hopper: bubblewrap does not run inside its sandbox; runs get limits only")
        return nested_command(command, workdir=work) if self._nested else None


def run(command: list[str], work: Path, stdin: str, timeout: float) -> dict[str, Any]:
    """Run a command to its end or its timeout; its output, exit code and what it used (wait4's rusage)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return

    timer = threading.Timer(timeout, kill)
    outputs: dict[str, str] = {}
    readers = [threading.Thread(target=_read, args=(process.stdout, outputs, "stdout"), daemon=True),
               threading.Thread(target=_read, args=(process.stderr, outputs, "stderr"), daemon=True),
               threading.Thread(target=_write, args=(process.stdin, stdin), daemon=True)]
    timer.start()
    for reader in readers:
        reader.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its rusage
    duration = time.perf_counter() - started
    for reader in readers:
        reader.join(timeout=5)
    return {
        "stdout": outputs.get("stdout", ""), "stderr": outputs.get("stderr", ""),
        "exit_code": process.returncode, "timed_out": timed_out.is_set(), "duration_s": round(duration, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _read(stream: Any, outputs: dict[str, str], name: str) -> None:
    data = stream.read(MAX_OUTPUT + 1)
    rest = 0
    while chunk := stream.read(65536):  # drain the rest so the run never blocks on a full pipe
        rest += len(chunk)
    stream.close()
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if len(data) > MAX_OUTPUT or rest:
        text += f"\n[{len(data) - MAX_OUTPUT + rest} more bytes cut]"
    outputs[name] = text


def _write(stream: Any, text: str) -> None:
    try:
        if text:
            stream.write(text.encode("utf-8"))
    except BrokenPipeError:  # the run ended without reading its input
        return
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            return
