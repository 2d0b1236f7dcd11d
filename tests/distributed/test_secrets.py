"""A secret granted to a MAD in another process reaches it sealed: no byte of it in Redis or in the journal."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, MadNode, RedisServer, mad_cli, needs_redis

pytestmark = needs_redis

SECRET = "s3cr3t-AbCd-9876"
"""Short enough that Redis's DUMP keeps it as it is (no compression could hide it)."""
KEYHOLDER = '''
import hashlib
from mads.kernel import MAD, tool


class Keyholder(MAD):
    """Uses a secret without telling it."""

    @tool
    async def use(self, name: str) -> dict:
        """Fetch the secret through Turing; answer only its SHA-256."""
        value = await self.ctx.secret(name)
        return {"sha256": hashlib.sha256(value.encode()).hexdigest(), "length": len(value)}
'''


def every_key_dumped(redis: RedisServer) -> bytes:
    keys = [k for k in redis.cli("--scan").splitlines() if k]
    dumped = b""
    for key in keys:
        done = subprocess.run(["redis-cli", "-p", str(redis.port), "--no-raw", "DUMP", key], capture_output=True,
                              check=True)
        dumped += done.stdout
    return dumped


def test_a_granted_secret_crosses_processes_sealed(redis_server: RedisServer, tmp_path: Path) -> None:
    mads = tmp_path / "mads"
    mads.mkdir()
    (mads / "keyholder.py").write_text(KEYHOLDER)
    first = MadNode(redis_server.url, "turing,rogers", tmp_path / "node1")
    second = MadNode(redis_server.url, "keyholder", tmp_path / "node2", "--mad-path", str(mads))
    env = {**first.env, "MAD_BUS": redis_server.url, "MAD_HOME": str(tmp_path / "attached")}
    sessions = tmp_path / "sessions"
    recorder = subprocess.Popen([sys.executable, "-m", "madtui", "record", "--sessions", str(sessions)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    traffic = tmp_path / "monitor.txt"
    with traffic.open("wb") as out:  # every command Redis is sent, with its arguments, while the secret moves
        monitor = subprocess.Popen(["redis-cli", "-p", str(redis_server.port), "monitor"], stdout=out)
    try:
        assert recorder.stdout is not None and "recording" in recorder.stdout.readline()
        assert mad_cli(env, "call", "turing_set_secret", "name=db", f"value={SECRET}").returncode == 0
        refused = mad_cli(env, "call", "keyholder_use", "name=db")
        assert refused.returncode == 1 and "keyholder has no grant for secret db" in refused.stderr
        assert mad_cli(env, "call", "turing_grant", "name=db", "mad=keyholder").returncode == 0
        used = mad_cli(env, "call", "keyholder_use", "name=db")
        assert used.returncode == 0, used.stderr
        assert json.loads(used.stdout) == {"sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
                                           "length": len(SECRET)}
        dumped = every_key_dumped(redis_server)
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        second.stop()
        first.stop()
    assert len(dumped) > 1000 and SECRET.encode() not in dumped
    seen = traffic.read_bytes()
    assert b"turing_set_secret" in seen and b"keyholder" in seen and SECRET.encode() not in seen
    (journal,) = sessions.glob("*.db")
    assert SECRET.encode() not in journal.read_bytes()
    assert b"turing_set_secret" in journal.read_bytes() and b"keyholder_use" in journal.read_bytes()
