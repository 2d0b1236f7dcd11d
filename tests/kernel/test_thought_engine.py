"""The Thought Engine: DTR answers commands with no LLM; prose goes to the Imperator; stages are measured."""
from __future__ import annotations

from mads.kernel import MAD, tool
from mads.kernel.llm.offline import HOW_TO_CONFIGURE


class Probe(MAD):
    """Answers pings."""

    @tool
    async def ping(self, text: str, times: int = 1) -> dict:
        """Echo the text."""
        return {"echo": text * times}


async def test_dtr_runs_a_command_with_no_llm_and_records_its_figures(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        message, replies = await eco.send("@Probe ping text=ab times=2")
        data = replies[0].data
        assert data["result"] == {"echo": "abab"}
        assert data["stage"]["name"] == "dtr" and data["stage"]["llm_calls"] == 0
        assert data["stage"]["tokens_avoided"] > 0
        stats = eco.thought_engine("probe").statistics()
        assert stats["dtr"]["handled"] == 1 and stats["imperator"]["handled"] == 0
        assert eco.events.of("stage")[0].payload["stage"] == "dtr"


async def test_bad_arguments_to_a_known_tool_get_an_error_reply_without_llm(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        _, replies = await eco.send("@Probe ping times=lots")
        assert replies[0].tags == ["error"]
        assert "times: expected an integer" in replies[0].content
        assert replies[0].data["stage"]["llm_calls"] == 0


async def test_converse_routes_a_bare_command_too(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        answer = await eco.call_tool("probe_converse", {"prompt": "ping text=x"})
        assert answer["result"] == {"echo": "x"} and answer["stage"]["name"] == "dtr"


async def test_prose_without_a_gateway_is_an_error_reply(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        _, replies = await eco.send("@Probe how are you today?")
        assert replies[0].tags == ["error"] and "Fiedler is not loaded" in replies[0].content


async def test_offline_prose_reply_says_how_to_configure_a_model(make_ecosystem) -> None:
    async with make_ecosystem(only=["fiedler", "horace"]) as eco:
        _, replies = await eco.send("@Horace which files do you keep?")
        assert HOW_TO_CONFIGURE in replies[0].content
        assert replies[0].data["stage"]["name"] == "imperator"
