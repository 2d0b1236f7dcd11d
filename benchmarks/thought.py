"""Thought Engine figures: LPPM on the evaluation set (hits, false hits, routing time, tokens saved) and CET.

The evaluation set and its rule-mode oracle are in `evaluation.py`: 12 phrasings, each trained
2-3 times, then asked 5 times with new values; 9 traps near them.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mads.kernel import Config, Ecosystem, Message
from mads.kernel.cognition.cet import CET, shrink
from mads.kernel.cognition.lppm import LPPM
from mads.kernel.cognition.stages import Turn
from mads.kernel.llm.base import estimate_tokens

from .evaluation import PHRASINGS, TRAPS, ask, ecosystem, request, train
from .harness import Sample, figure


async def _evaluate(min_support: int) -> dict[str, Any]:
    """Train, then ask every new request and every trap: served counts and tokens spent."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-lppm-") as folder:
        async with ecosystem(Path(folder), min_support=min_support) as eco:
            await train(eco, strict=False)
            served = total = tokens = 0
            for mad, phrasing, *_, new in PHRASINGS:
                for values in new:
                    stage, _ = await ask(eco, mad, request(phrasing, values))
                    total += 1
                    served += stage["name"] == "lppm" and stage["llm_calls"] == 0
                    tokens += stage["tokens"]
            false_hits = 0
            for trap in TRAPS:
                stage, _ = await ask(eco, trap.split()[0][1:].lower(), trap)
                false_hits += stage["name"] == "lppm"
            route = await _route_times(eco)
    return {"served": served, "total": total, "tokens": tokens, "false_hits": false_hits, "route_ms": route}


async def _route_times(eco: Ecosystem) -> list[float]:
    """Milliseconds LPPM takes to find (or not find) a template for each new request: routing only, no tool run."""
    times = []
    for mad, phrasing, *_, new in PHRASINGS:
        runner = eco.runners[mad]
        lppm = LPPM(lambda runner=runner: runner.ctx.state)
        for values in new:
            message = Message.create("main", "human", f"@{mad.capitalize()} {request(phrasing, values)}")
            turn = Turn(message, mad, runner.cls.description, runner.cls.tools, _no_call, _no_llm)
            started = time.perf_counter()
            lppm.match(turn)
            times.append((time.perf_counter() - started) * 1000)
    return times


async def _no_call(*_: Any) -> Any:
    raise AssertionError("routing runs no tool")


async def _no_llm(*_: Any) -> Any:
    raise AssertionError("routing asks no model")


@figure("lppm_hit_rate", unit="share", target="value >= 0.8", n=1, quick_n=1)
async def lppm_hit_rate(n: int) -> Sample:
    """Share of the evaluation set's 60 new requests LPPM answers with 0 LLM calls (each checked against the
    oracle in tests/kernel/test_lppm.py). Baseline: 1, all of them."""
    result = await _evaluate(2)
    return Sample(result["served"] / result["total"], 1.0)


@figure("lppm_false_hits", unit="traps served", target="value == 0", n=1, quick_n=1)
async def lppm_false_hits(n: int) -> Sample:
    """Traps (a different verb, a flipped meaning word, a trailing clause, a word where a number goes) LPPM
    answered instead of passing them to the Imperator. Baseline: the number of traps."""
    result = await _evaluate(2)
    return Sample(float(result["false_hits"]), float(len(TRAPS)))


@figure("lppm_route_p50", unit="ms", target="value < 5", n=1, quick_n=1)
async def lppm_route_p50(n: int) -> Sample:
    """Median milliseconds for LPPM to route a request over the evaluation set's learned templates (state read,
    match, schema check). Baseline: the median time of one JSON encoding of the request's message."""
    result = await _evaluate(2)
    message = Message.create("main", "human", "@Horace please save gamma into c.txt")
    encodes = []
    for _ in range(60):
        started = time.perf_counter()
        json.dumps(message.to_dict())
        encodes.append((time.perf_counter() - started) * 1000)
    return Sample(statistics.median(result["route_ms"]), statistics.median(encodes))


@figure("tokens_saved", unit="tokens", target="ratio <= 0.5", n=1, quick_n=1)
async def tokens_saved(n: int) -> Sample:
    """Tokens the model spent on the evaluation set's new requests with LPPM. Baseline: the same requests with the
    Imperator alone (LPPM never serving); ratio = the share still spent."""
    with_lppm = await _evaluate(2)
    alone = await _evaluate(10_000)
    return Sample(float(with_lppm["tokens"]), float(alone["tokens"]))


async def _cet_conversation(root: Path, size: int, fact_at: int) -> tuple[int, int, bool]:
    """A conversation of `size` messages with a fact at `fact_at`, then a question: CET's tokens, the whole
    history's tokens, and whether the fact was in the context."""
    fact = "For the record: the wifi password of the lab is kumquat-42."
    eco = Ecosystem(Config(home=root / "home", sample_interval=0, environ={"MAD_MASTER_KEY": "c" * 64},
                           only=["horace", "rogers", "dewey", "fiedler", "turing"]))
    async with eco:
        made = await eco.call_tool("rogers_create_conversation", {"name": "lab", "participants": ["human", "horace"]})
        for number in range(1, size + 1):
            text = fact if number == fact_at else (f"Status note {number}: the build on runner {number % 7} passed "
                                                   f"in {30 + number % 11} minutes, nothing else to report today.")
            await eco.send(text, conversation=made["id"])
        await eco.settle()
        runner = eco.runners["horace"]
        question = Message.create(made["id"], "human", "@Horace what is the wifi password of the lab?")

        async def call(tool: str, arguments: dict[str, Any], raw: bool) -> Any:
            return await eco.call_tool(tool, arguments, caller="horace")

        turn = Turn(question, "horace", runner.cls.description, runner.cls.tools, call, _no_llm,
                    known_tools=frozenset(eco.tools()))
        cet = CET()
        messages = await cet.build(turn)
        whole = await eco.call_tool("rogers_get_messages", {"conversation_id": made["id"], "limit": 500})
    sent = sum(estimate_tokens(m["content"]) for m in messages)
    history = estimate_tokens(messages[0]["content"]) + estimate_tokens(
        "\n".join(shrink(m) for m in whole["messages"])) + estimate_tokens(question.content)
    return sent, history, any(fact in m["content"] for m in messages)


@figure("cet_token_ratio", unit="tokens", target="ratio <= 0.5", n=200, quick_n=200)
async def cet_token_ratio(n: int) -> Sample:
    """Tokens of CET's context for a question about message 17 of an n-message conversation (200). Baseline: the
    whole history's tokens; ratio = the share sent."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-cet-") as folder:
        sent, whole, _ = await _cet_conversation(Path(folder), n, 17)
    return Sample(float(sent), float(whole))


@figure("cet_fact_recall", unit="share", target="value == 1", n=200, quick_n=200)
async def cet_fact_recall(n: int) -> Sample:
    """Share of questions whose fact (at message 17, 100 and n-5 of n) reached the context CET built. Baseline: 1."""
    found = 0
    positions = (17, n // 2, n - 5)
    for position in positions:
        with tempfile.TemporaryDirectory(prefix="mad-bench-cet-") as folder:
            _, _, recalled = await _cet_conversation(Path(folder), n, position)
        found += recalled
    return Sample(found / len(positions), 1.0)
