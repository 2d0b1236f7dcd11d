"""Kernel services hosted by another process: secrets from Turing's, LLM completions from Fiedler's."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..llm.base import LLMResponse

if TYPE_CHECKING:
    from .node import Node

SERVICE_SECONDS = 120.0
"""How long a secret or a completion asked of another process may take."""


class RemoteKeeper:
    """Turing in another process: it checks the grant there and seals the value for this process alone."""

    def __init__(self, node: Node, keeper: str = "turing") -> None:
        self.node = node
        self.keeper = keeper

    async def reveal(self, name: str, mad: str) -> str:
        value = await self.node.secret(mad, name, self.keeper, SERVICE_SECONDS)
        self.node.eco.hub.redactor.add(value)  # never written here either
        return value


class RemoteGateway:
    """Fiedler in another process: it calls the model, keeps the accounts and records the call there."""

    def __init__(self, node: Node, keeper: str = "fiedler") -> None:
        self.node = node
        self.keeper = keeper

    async def complete(self, mad: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       model: str | None = None) -> LLMResponse:
        data = await self.node.llm(mad, messages, tools, model, self.keeper, SERVICE_SECONDS)
        return LLMResponse.from_dict(data)
