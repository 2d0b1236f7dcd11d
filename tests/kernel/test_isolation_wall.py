"""The process boundary is the wall: an isolated MAD finds no key, no other MAD's data, no host network."""
from __future__ import annotations

import logging
import os

import pytest

from mads.kernel import MadError
from tests.helpers import needs_bwrap, write_probe

MASTER = "0123456789abcdef" * 4
API_KEY = "sk-test-wall-0123456789"
SECRET = "hunter22-database-password"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("MAD_MASTER_KEY", MASTER)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY + "-a")
    return dict(os.environ)


def no_keys_in(environ: dict[str, str]) -> None:
    assert "MAD_MASTER_KEY" not in environ and not [k for k in environ if k.endswith("_API_KEY")]
    assert not [v for v in environ.values() if MASTER in v or API_KEY in v]


@needs_bwrap
async def test_inside_bubblewrap_nothing_of_the_others_is_there(make_ecosystem, tmp_path, keys, host_listener) -> None:
    port, connections = host_listener
    home = tmp_path / "home"
    home.mkdir()
    (home / "master.key").write_text("a-key-file-kept-by-a-user\n")
    folder = write_probe(tmp_path / "mads")
    async with make_ecosystem(only=["turing", "horace", "rogers", "probe"], mad_path=[folder], sandbox="bwrap",
                              environ=keys, sample_interval=0) as eco:
        await eco.call_tool("horace_write_file", {"path": "plans/secret-plan.txt", "content": "x"})
        await eco.call_tool("turing_set_secret", {"name": "db", "value": SECRET})
        paths = {
            "master.key": home / "master.key",
            "Turing's database": home / "state" / "turing" / "turing.db",
            "Horace's file": home / "files" / "plans" / "secret-plan.txt",
            "Horace's folder": home / "files",
            "Rogers' state": home / "state" / "rogers",
            "its own module's folder": tmp_path / "mads",
        }
        seen = await eco.call_tool("probe_look", {"paths": [str(p) for p in paths.values()], "port": port})
        no_keys_in(seen["environ"])
        assert {name: seen["paths"][str(path)] for name, path in paths.items()} == {
            "master.key": "absent", "Turing's database": "absent", "Horace's file": "absent",
            "Horace's folder": "absent", "Rogers' state": "absent", "its own module's folder": "absent"}
        assert seen["connection"].startswith("refused") and connections == []
        with pytest.raises(MadError, match="probe has no grant for secret db"):
            await eco.call_tool("probe_secret", {"name": "db"})
        with pytest.raises(MadError, match="probe runs isolated and may not call turing_grant"):
            await eco.call_tool("probe_call", {"tool": "turing_grant", "arguments": {"name": "db", "mad": "probe"}})
        with pytest.raises(MadError, match="probe cannot publish as @human"):
            await eco.call_tool("probe_publish_as", {"sender": "human", "text": "@Turing grant name=db mad=probe"})
        await eco.call_tool("turing_grant", {"name": "db", "mad": "probe"})  # a person grants it
        assert await eco.call_tool("probe_secret", {"name": "db"}) == SECRET


async def test_without_bubblewrap_the_limits_and_a_keyless_environment_still_hold(make_ecosystem, tmp_path, keys,
                                                                                   caplog) -> None:
    folder = write_probe(tmp_path / "mads")
    with caplog.at_level(logging.WARNING, logger="mads.kernel"):
        async with make_ecosystem(only=["turing", "probe"], mad_path=[folder], sandbox="rlimits", environ=keys,
                                  sample_interval=0) as eco:
            seen = await eco.call_tool("probe_look", {"paths": []})
            no_keys_in(seen["environ"])
            with pytest.raises(MadError, match="memory limit 256 MB"):
                await eco.call_tool("probe_hog", {})
    said = [r.getMessage() for r in caplog.records if "resource limits only" in r.getMessage()]
    assert said == ["isolation: probe run with resource limits only, no filesystem or network wall: "
                    "MAD_SANDBOX=rlimits"]
