"""Keys are read once at start, taken out of the environment, and handed only to Turing and Fiedler."""
from __future__ import annotations

import os

import pytest

from mads.kernel import MAD, Config, Ecosystem, tool

MASTER = "m" * 64
API_KEY = "sk-test-0123456789abcdef"


class Snoop(MAD):
    """Looks for keys wherever a MAD could reach them."""

    @tool
    async def look(self) -> dict:
        """Report every key found in the environment or the context."""
        found = {k: v for k, v in os.environ.items() if k == "MAD_MASTER_KEY" or k.endswith("_API_KEY")}
        reachable = []
        for name in dir(self.ctx):
            if name.startswith("__"):
                continue
            value = getattr(self.ctx, name, None)
            reachable.append(repr(value))
            reachable.append(repr(getattr(value, "__dict__", "")))
        return {"environ": found, "context": "\n".join(reachable)}


@pytest.fixture
def keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("MAD_MASTER_KEY", MASTER)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    return dict(os.environ)


async def test_no_core_mad_finds_the_master_key_or_an_api_key(tmp_path, keys_in_environment) -> None:
    config = Config(home=tmp_path / "home", environ=dict(os.environ), provider="openai", sample_interval=0,
                    only=["turing", "fiedler", "snoop"])
    async with Ecosystem(config, mads=[Snoop]) as eco:
        assert "MAD_MASTER_KEY" not in os.environ and "OPENAI_API_KEY" not in os.environ
        assert "MAD_MASTER_KEY" not in eco.config.environ and "OPENAI_API_KEY" not in eco.config.environ
        seen = await eco.call_tool("snoop_look", {})
        assert seen["environ"] == {}
        assert MASTER not in seen["context"] and API_KEY not in seen["context"]
        # ...while the keepers got theirs: Turing seals with the master key, Fiedler's provider has the API key
        await eco.call_tool("turing_set_secret", {"name": "db", "value": "hunter22"})
        assert not (tmp_path / "home" / "master.key").exists()
        models = await eco.call_tool("fiedler_list_models", {})
        assert models["provider"] == "openai" and "error" not in models
    assert os.environ.get("OPENAI_BASE_URL") == "http://127.0.0.1:9/v1"  # only keys are taken


async def test_the_keys_open_the_same_secrets_in_the_next_ecosystem(tmp_path, monkeypatch) -> None:
    for _ in range(2):
        monkeypatch.setenv("MAD_MASTER_KEY", MASTER)
        config = Config(home=tmp_path / "home", environ=dict(os.environ), sample_interval=0, only=["turing"])
        async with Ecosystem(config) as eco:
            listed = await eco.call_tool("turing_list_secrets", {})
            if not listed:
                await eco.call_tool("turing_set_secret", {"name": "db", "value": "hunter22"})
    assert [s["name"] for s in listed] == ["db"]
