"""The one interface every LLM provider implements, and the records of a call."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any


class LLMError(Exception):
    """The provider could not answer (unreachable, refused, script exhausted): a one-line message.

    `retryable` errors (429, 5xx) may be tried again by the gateway, after `retry_after` seconds when the
    server said how long to wait; `status` is the HTTP status when there was one.
    """

    def __init__(self, message: str = "", *, status: int | None = None, retry_after: float | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


@dataclass
class ToolCall:
    """The model asks for a tool: its name and arguments."""

    name: str
    arguments: dict[str, Any]
    id: str = ""
    error: str = ""
    """Why the arguments could not be read (the model wrote malformed JSON); `arguments` is then empty."""


@dataclass
class LLMRequest:
    """One completion request: the calling MAD, chat messages and the tools on offer."""

    mad: str
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    on_text: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    """Called with each piece of the reply's text as it streams in (cheap and synchronous); None: no one watches."""


@dataclass
class LLMResponse:
    """What the model said: text, tool calls, and what it cost."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments, **({"error": c.error} if c.error else {})}
                           for c in self.tool_calls],
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_ms": round(self.latency * 1000, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMResponse:
        """A response back from `to_dict` (it crossed into an isolated MAD's process)."""
        return cls(text=data.get("text", ""),
                   tool_calls=[ToolCall(c["name"], c.get("arguments") or {}, c.get("id", ""), c.get("error", ""))
                               for c in data.get("tool_calls") or []],
                   model=data.get("model", ""), input_tokens=data.get("input_tokens", 0),
                   output_tokens=data.get("output_tokens", 0), cost=data.get("cost", 0.0),
                   latency=data.get("latency_ms", 0.0) / 1000)


# Dollars per million tokens (input, output) for models whose price is public.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-opus-4-1": (15.00, 75.00),
}


def cost_of(model: str, input_tokens: int, output_tokens: int) -> float:
    """Dollars for a call; 0 for local or unknown models."""
    price = PRICES.get(model)
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


def estimate_tokens(value: Any) -> int:
    """A rough token count (4 characters a token) for providers that report none."""
    return max(1, len(str(value)) // 4)


class Provider(ABC):
    """An LLM backend: lists its models and completes a chat with tools."""

    name: str = ""

    @property
    def reported_name(self) -> str:
        """The provider name tools report (a replay reports the provider it stands in for)."""
        return self.name

    @abstractmethod
    def models(self) -> list[str]: ...

    async def list_models(self) -> list[str]:
        """The models the server offers (asked of it); LLMError when it cannot say."""
        return self.models()

    @abstractmethod
    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def close(self) -> None:
        """Release connections."""
