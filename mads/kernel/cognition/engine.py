"""The Thought Engine: a message goes through the stages until one answers; each stage is measured."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..events import Stage as StageAnswered
from ..message import Message
from .cet import CET, DEFAULT_BUDGET
from .lppm import LPPM
from .stages import DTR, Imperator, Outcome, Stage, Turn

if TYPE_CHECKING:
    from ..hub import EventHub
    from ..supervisor import MADRunner


class Host(Protocol):
    """What a Thought Engine needs of the ecosystem: its MAD's runner, tool calls, the hub."""

    hub: EventHub

    def runner(self, name: str) -> MADRunner: ...

    async def call_tool(self, name: str, args: dict[str, Any] | None = None, *, caller: str = ...,
                        raw: bool = ..., correlation_id: str | None = ..., progress: Any = ...) -> Any: ...


@dataclass
class StageStats:
    """What one stage has handled, how long it took and the tokens it used or avoided."""

    handled: int = 0
    passed: int = 0
    seconds: float = 0.0
    llm_calls: int = 0
    tokens: int = 0
    tokens_avoided: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "handled": self.handled, "passed": self.passed,
            "latency_ms": round(self.seconds * 1000, 3),
            "mean_latency_ms": round(self.seconds * 1000 / self.handled, 3) if self.handled else 0.0,
            "llm_calls": self.llm_calls, "tokens": self.tokens, "tokens_avoided": self.tokens_avoided,
        }


class ThoughtEngine:
    """One MAD's pipeline of stages: DTR, LPPM, then the Imperator (LPPM learns from what the Imperator resolved)."""

    def __init__(self, ecosystem: Host, mad: str, stages: list[Stage] | None = None) -> None:
        self.eco = ecosystem
        self.mad = mad
        runner = ecosystem.runner(mad)
        if stages is None:
            config = getattr(ecosystem, "config", None)
            isolated = getattr(ecosystem, "is_isolated", lambda cls: False)(runner.cls)
            stages = [DTR()]
            if not isolated:  # an isolated MAD's state is its own process's
                stages.append(LPPM(lambda: self.eco.runner(mad).ctx.state,
                                   min_support=getattr(config, "lppm_min_support", 2)))
            budgets = getattr(config, "context_budget", {}) or {}
            budget = budgets.get(mad, budgets.get("*", DEFAULT_BUDGET))
            stages.append(Imperator(max_steps=runner.cls.max_imperator_steps, context_builder=CET(budget)))
        self.stages = stages
        self.stats = {stage.name: StageStats() for stage in self.stages}
        self.lppm = next((stage for stage in self.stages if isinstance(stage, LPPM)), None)

    async def process(self, message: Message, direct: bool = False) -> Outcome:
        runner = self.eco.runner(self.mad)
        ctx = runner.ctx

        async def call(tool: str, args: dict[str, Any], raw: bool) -> Any:
            return await self.eco.call_tool(tool, args, caller=self.mad, raw=raw,
                                            correlation_id=message.correlation_id)

        async def llm(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
            return await ctx.llm(messages, tools)

        tools = getattr(self.eco, "tools", None)
        known = frozenset(tools()) if callable(tools) else frozenset()
        turn = Turn(message, self.mad, runner.cls.description, runner.cls.tools, call, llm, direct, known)
        for stage in self.stages:
            started = time.perf_counter()
            outcome = await stage.handle(turn)
            elapsed = time.perf_counter() - started
            stats = self.stats[stage.name]
            stats.seconds += elapsed
            if outcome is None:
                stats.passed += 1
                continue
            stats.handled += 1
            stats.llm_calls += outcome.llm_calls
            stats.tokens += outcome.tokens
            stats.tokens_avoided += outcome.tokens_avoided
            if self.lppm is not None and stage.name == "imperator":
                try:
                    self.lppm.learn(turn, outcome)
                except Exception as exc:  # learning must never cost the answer
                    ctx.log.warning("lppm: learning from %s failed: %s", message.id, exc)
            gateway = getattr(self.eco, "services", {}).get("llm")
            note = getattr(gateway, "note_stage", None)
            if note is not None:  # Fiedler keeps the tokens used and avoided per MAD and stage
                note(self.mad, stage.name, outcome.llm_calls, outcome.tokens, outcome.tokens_avoided)
            self.eco.hub.emit(StageAnswered(
                mad=self.mad, conversation=message.conversation, correlation_id=message.correlation_id,
                stage=stage.name, ok=outcome.ok, latency_ms=round(elapsed * 1000, 3),
                llm_calls=outcome.llm_calls, tokens=outcome.tokens, tokens_avoided=outcome.tokens_avoided,
                tool_calls=outcome.tool_calls,
            ))
            return outcome
        return Outcome(False, "no stage could handle this message", "none")

    async def reply(self, message: Message) -> Message:
        outcome = await self.process(message)
        data = self._data(outcome)
        return message.reply(self.mad, outcome.text, tags=["success" if outcome.ok else "error"], data=data)

    async def converse(self, prompt: str) -> dict[str, Any]:
        message = Message.create("", "human", prompt)
        outcome = await self.process(message, direct=True)
        return {"reply": outcome.text, **self._data(outcome)}

    def _data(self, outcome: Outcome) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": outcome.ok, "stage": {
            "name": outcome.stage, "llm_calls": outcome.llm_calls, "tokens": outcome.tokens,
            "tokens_in": outcome.tokens_in, "tokens_out": outcome.tokens_out,
            "tokens_avoided": outcome.tokens_avoided, "tool_calls": outcome.tool_calls}}
        if outcome.ok:
            data["result"] = outcome.result
        else:
            data["error"] = outcome.text
        return data

    def statistics(self) -> dict[str, Any]:
        return {name: stats.to_dict() for name, stats in self.stats.items()}
