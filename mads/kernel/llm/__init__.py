"""LLM providers behind one interface: offline, scripted, openai, anthropic."""
from __future__ import annotations

from collections.abc import Mapping

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall, cost_of, estimate_tokens

PROVIDERS = ("offline", "scripted", "openai", "anthropic")


def make_provider(name: str, environ: Mapping[str, str]) -> Provider:
    """The provider called `name`, configured from the environment; LLMError says what is missing."""
    env = dict(environ)
    if name == "offline":
        from .offline import OfflineProvider
        return OfflineProvider()
    if name == "scripted":
        from .scripted import ScriptedProvider
        return ScriptedProvider(env.get("MAD_SCRIPT"))
    if name == "openai":
        from .openai_compat import OpenAIProvider
        return OpenAIProvider(env)
    if name == "anthropic":
        from .anthropic_provider import AnthropicProvider
        return AnthropicProvider(env)
    raise LLMError(f"unknown provider {name!r} (choose one of {', '.join(PROVIDERS)})")


__all__ = [
    "PROVIDERS", "LLMError", "LLMRequest", "LLMResponse", "Provider", "ToolCall",
    "cost_of", "estimate_tokens", "make_provider",
]
