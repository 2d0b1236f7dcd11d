"""The Thought Engine's stages: each handles what it can and passes the rest on.

DTR answers deterministic commands with no LLM; the Imperator answers prose with the LLM
and the MAD's tools. LPPM (learned prose -> process) and CET (context building) slot in as
further stages and as the Imperator's `context_builder`.
"""
from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MadError
from ..llm.base import LLMError, LLMResponse, estimate_tokens
from ..mad import ToolSpec
from ..message import Command, Message, parse_args
from ..supervisor import one_line


@dataclass
class Turn:
    """One message for a MAD to think about, with the means to act on it."""

    message: Message
    mad: str
    description: str
    tools: dict[str, ToolSpec]
    call: Callable[[str, dict[str, Any], bool], Awaitable[Any]]
    """call(tool, args, raw): run one of the MAD's tools; raw means key=value strings to coerce."""
    llm: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Awaitable[LLMResponse]]
    direct: bool = False
    """True when the text was given to this MAD directly (converse), so `tool k=v` needs no @mention."""
    known_tools: frozenset[str] = frozenset()
    """Every tool of the ecosystem (CET asks Rogers and Dewey for the conversation when they run)."""


@dataclass
class Outcome:
    """A stage's answer: text for people, data for programs, and what it cost."""

    ok: bool
    text: str
    stage: str
    result: Any = None
    llm_calls: int = 0
    tokens: int = 0
    tokens_avoided: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tool_calls: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    """Each tool call made: name, arguments, succeeded (what LPPM learns from)."""


class Stage(ABC):
    """A step of the Thought Engine."""

    name: str = ""

    @abstractmethod
    async def handle(self, turn: Turn) -> Outcome | None:
        """Answer the turn, or return None to pass it to the next stage."""


def render(result: Any) -> str:
    """A tool result as readable text: strings as they are, data as JSON."""
    if isinstance(result, str):
        return result
    text = json.dumps(result, ensure_ascii=False, default=str)
    if len(text) > 100:
        text = json.dumps(result, ensure_ascii=False, indent=2, default=str)
    return text


def tool_definitions(tools: dict[str, ToolSpec], mad: str) -> list[dict[str, Any]]:
    """The MAD's tools as offered to a model (its converse door excluded: no recursion)."""
    return [
        {"name": s.name, "description": s.description, "input_schema": s.input_schema}
        for s in tools.values() if s.name != f"{mad}_converse"
    ]


class DTR(Stage):
    """Decision Tree Router: a command for one of this MAD's tools runs it, with no LLM."""

    name = "dtr"

    def __init__(self) -> None:
        self._schema_cost: tuple[dict[str, ToolSpec], int] | None = None

    def _schema_tokens(self, turn: Turn) -> int:
        """Tokens the MAD's tool definitions would cost a model; computed once per tool set (a reload makes a new one)."""
        cached = self._schema_cost
        if cached is None or cached[0] is not turn.tools:
            cached = self._schema_cost = (turn.tools, estimate_tokens(json.dumps(tool_definitions(turn.tools, turn.mad))))
        return cached[1]

    def _command(self, turn: Turn) -> Command | None:
        command = turn.message.command
        if command is not None and command.mad == turn.mad:
            return command
        if turn.direct:
            head, _, rest = turn.message.content.strip().partition(" ")
            if f"{turn.mad}_{head}" in turn.tools or head in turn.tools:
                try:
                    args, raw = parse_args(rest)
                    return Command(turn.mad, head, args, raw)
                except ValueError as exc:
                    return Command(turn.mad, head, {}, True, error=str(exc))
        return None

    async def handle(self, turn: Turn) -> Outcome | None:
        command = self._command(turn)
        if command is None:
            return None
        spec = turn.tools.get(f"{turn.mad}_{command.tool}") or turn.tools.get(command.tool)
        if spec is None or spec.name == f"{turn.mad}_converse":
            return None
        avoided = estimate_tokens(turn.message.content) + self._schema_tokens(turn) + 50
        if command.error:
            return Outcome(False, f"{spec.name}: {command.error}", self.name, tokens_avoided=avoided)
        try:
            result = await turn.call(spec.name, command.args, command.raw_args)
        except MadError as exc:
            return Outcome(False, one_line(exc), self.name, tokens_avoided=avoided, tool_calls=[spec.name])
        return Outcome(True, render(result), self.name, result=result, tokens_avoided=avoided,
                       tool_calls=[spec.name])


def default_context(turn: Turn) -> list[dict[str, Any]]:
    """The plainest context: who the MAD is, and the message. CET replaces this."""
    system = (
        f"You are {turn.mad}, a MAD in a multi-agent ecosystem. {turn.description}\n"
        "Use your tools when they help; answer briefly and plainly."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": turn.message.content}]


CANCELLED = "cancelled"
"""What the gateway says of a call cancelled on the way (Esc, mad_cancel): the reply is `#error cancelled`."""


class Imperator(Stage):
    """The LLM, through Fiedler, with the MAD's tools: a bounded tool-calling loop."""

    name = "imperator"

    def __init__(self, max_steps: int = 6, context_builder: Any = default_context) -> None:
        self.max_steps = max_steps
        self.context_builder = context_builder
        """A function of the turn giving the messages (CET's `build`, which may be async), or an object with
        `build(turn)` and `tools(turn, offered)`."""

    async def handle(self, turn: Turn) -> Outcome | None:
        tools = tool_definitions(turn.tools, turn.mad)
        offered = {t["name"] for t in tools}
        builder = self.context_builder
        if hasattr(builder, "tools"):
            tools = builder.tools(turn, tools)
        built = builder.build(turn) if hasattr(builder, "build") else builder(turn)
        messages = await built if inspect.isawaitable(built) else built
        calls = tokens = tokens_in = tokens_out = 0
        used: list[str] = []
        made: list[tuple[str, dict[str, Any], bool]] = []
        repaired = False
        for _ in range(self.max_steps):
            try:
                response = await turn.llm(messages, tools)
            except (LLMError, MadError) as exc:
                said = str(exc) if str(exc) == CANCELLED else f"the language model could not answer: {exc}"
                return Outcome(False, said, self.name, llm_calls=calls, tokens=tokens, tool_calls=used,
                               tokens_in=tokens_in, tokens_out=tokens_out)
            calls += 1
            tokens += response.input_tokens + response.output_tokens
            tokens_in += response.input_tokens
            tokens_out += response.output_tokens
            if not response.tool_calls:
                return Outcome(True, response.text or "(no answer)", self.name, result=response.text,
                               llm_calls=calls, tokens=tokens, tool_calls=used, calls=made, tokens_in=tokens_in,
                               tokens_out=tokens_out)
            broken = [c for c in response.tool_calls if c.error]
            if broken:
                if repaired:  # asked again once with the error: the model cannot write this call
                    return Outcome(False, f"the model's call of {broken[0].name} was not valid JSON twice: "
                                          f"{broken[0].error}", self.name, llm_calls=calls, tokens=tokens,
                                   tool_calls=used, calls=made, tokens_in=tokens_in, tokens_out=tokens_out)
                repaired = True
            messages.append({
                "role": "assistant", "content": response.text,
                "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls],
            })
            for call in response.tool_calls:
                used.append(call.name)
                if call.error:
                    content = (f"error: your arguments for {call.name} were not valid JSON ({call.error}); "
                               "call it again with the arguments as one valid JSON object")
                elif call.name not in offered:
                    content = f"error: no tool named {call.name!r}; the tools are {', '.join(sorted(offered))}"
                    made.append((call.name, dict(call.arguments), False))
                else:
                    try:
                        content = render(await turn.call(call.name, call.arguments, False))
                        made.append((call.name, dict(call.arguments), True))
                    except MadError as exc:
                        content = f"error: {one_line(exc)}"
                        made.append((call.name, dict(call.arguments), False))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        return Outcome(False, f"stopped after {self.max_steps} rounds of tool calls without an answer",
                       self.name, llm_calls=calls, tokens=tokens, tool_calls=used, tokens_in=tokens_in,
                       tokens_out=tokens_out)
