"""Hopper runs code in a fresh sandboxed process: output and exit code, a timeout, a memory limit, no network, no
writes outside its work folder."""
from __future__ import annotations

import os

import pytest

from mads.kernel import MadError
from tests.helpers import SANDBOXES, needs_bwrap


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_a_run_gives_its_output_exit_code_and_what_it_used(make_ecosystem, sandbox) -> None:
    async with make_ecosystem(only=["hopper"], sandbox=sandbox, sample_interval=0) as eco:
        assert eco.status()["mads"]["hopper"]["placement"] == "isolated"  # by its own class, no --isolate needed
        code = "import sys\nname = sys.stdin.read()\nprint('hello', name)\nprint('oops', file=sys.stderr)\nsys.exit(3)"
        result = await eco.call_tool("hopper_run_python", {"code": code, "stdin": "hopper"})
        assert (result["stdout"], result["stderr"], result["exit_code"], result["timed_out"]) == \
            ("hello hopper\n", "oops\n", 3, False)
        assert result["sandbox"] == sandbox
        assert 0 < result["duration_s"] < 10 and result["cpu_s"] > 0 and result["max_rss_mb"] > 1


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_a_run_past_its_timeout_is_killed_and_a_run_past_the_memory_limit_fails(make_ecosystem,
                                                                                   sandbox) -> None:
    async with make_ecosystem(only=["hopper"], sandbox=sandbox, sample_interval=0) as eco:
        slow = await eco.call_tool("hopper_run_python", {"code": "print('started', flush=True)\nwhile True: pass",
                                                         "timeout": 1})
        assert slow["timed_out"] and slow["exit_code"] == -9 and slow["stdout"] == "started\n"
        assert 1 <= slow["duration_s"] < 5
        hog = await eco.call_tool("hopper_run_python", {"code": "x = bytearray(2 * 1024 ** 3)\nprint(len(x))"})
        assert hog["exit_code"] == 1 and "MemoryError" in hog["stderr"] and not hog["timed_out"]
        assert (await eco.call_tool("hopper_run_python", {"code": "print(6 * 7)"}))["stdout"] == "42\n"
        with pytest.raises(MadError, match="timeout must be more than 0 and at most 60 seconds, got 600"):
            await eco.call_tool("hopper_run_python", {"code": "pass", "timeout": 600})


@needs_bwrap
async def test_a_run_has_no_network_and_writes_only_in_its_work_folder(make_ecosystem, tmp_path,
                                                                        host_listener) -> None:
    port, reached = host_listener
    home = tmp_path / "home"
    code = f'''
import os, socket, tempfile
def attempt(what, action):
    try:
        action()
        print(what, "allowed")
    except OSError as exc:
        print(what, "refused:", exc.strerror)
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
attempt("write here", lambda: open("here.txt", "w").write("x"))
attempt("write a temp file", lambda: tempfile.NamedTemporaryFile(dir=None).close())
attempt("write /tmp", lambda: open("/tmp/escape.txt", "w").write("x"))
attempt("write the state", lambda: open({str(home / "state" / "hopper" / "escape.txt")!r}, "w").write("x"))
attempt("write home", lambda: open(os.path.expanduser("~/../escape.txt"), "w").write("x"))
'''
    async with make_ecosystem(only=["hopper"], sandbox="bwrap", sample_interval=0) as eco:
        result = await eco.call_tool("hopper_run_python", {"code": code})
    lines = result["stdout"].splitlines()
    assert lines[0].startswith("connect refused") and reached == []
    assert lines[1:3] == ["write here allowed", "write a temp file allowed"]
    assert all(" refused: " in line for line in lines[3:]) and len(lines) == 6, result
    assert not (home / "state" / "hopper" / "escape.txt").exists() and not os.path.exists("/tmp/escape.txt")
