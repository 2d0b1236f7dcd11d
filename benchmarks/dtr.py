"""DTR figure: the p50 of routing a deterministic command, parse included, tool run excluded."""
from __future__ import annotations

import json
import time
from typing import Any

from mads.kernel import MAD, Message, tool
from mads.kernel.cognition.stages import DTR, Turn

from .harness import Sample, figure, percentile

COMMAND = "@probe ping text=hi times=2"
ARGS_JSON = '{"text": "hi", "times": 2}'

_perf = time.perf_counter


class Probe(MAD):
    """Answers pings: the MAD whose tool the DTR routes to."""

    @tool
    async def ping(self, text: str, times: int = 1) -> str:
        """Repeat the text."""
        return text * times


async def _instant(tool: str, args: dict[str, Any], raw: bool) -> Any:
    """A tool run that costs nothing, so only the routing is timed."""
    return "hihi"


async def _no_llm(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
    raise RuntimeError("the DTR benchmark must never reach the LLM")


@figure("dtr_route_p50", unit="µs", target="value <= 50", n=20_000, quick_n=5_000)
async def dtr_route_p50(n: int) -> Sample:
    """p50 µs of `Message.create` of `@probe ping text=hi times=2` plus `await DTR().handle(turn)` with an instant tool.

    Baseline: `json.loads` of the same arguments as JSON, timed the same way, interleaved.
    """
    dtr = DTR()
    tools = Probe.tools
    description = Probe.description
    loads = json.loads
    routed: list[float] = []
    parsed: list[float] = []
    outcome = None
    for _ in range(n):
        t0 = _perf()
        loads(ARGS_JSON)
        t1 = _perf()
        message = Message.create("bench", "human", COMMAND)
        outcome = await dtr.handle(Turn(message, "probe", description, tools, _instant, _no_llm))
        t2 = _perf()
        parsed.append(t1 - t0)
        routed.append(t2 - t1)
    if outcome is None or not outcome.ok or outcome.tool_calls != ["probe_ping"]:
        raise RuntimeError(f"the DTR did not route {COMMAND!r} to probe_ping: {outcome}")
    return Sample(percentile(routed, 50) * 1e6, percentile(parsed, 50) * 1e6)
