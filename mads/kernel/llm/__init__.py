"""LLM providers behind one interface: offline, scripted, openai, anthropic."""
from __future__ import annotations

from collections.abc import Mapping

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall, cost_of, estimate_tokens

PROVIDERS = ("offline", "scripted", "openai", "anthropic", "replay")


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
    if name == "replay":
        from .replay import ReplayProvider
        journal = env.get("MAD_REPLAY_JOURNAL")
        if not journal:
            raise LLMError("the replay provider needs MAD_REPLAY_JOURNAL=<session.db>")
        live_name = env.get("MAD_REPLAY_LIVE")
        live = make_provider(live_name, env) if live_name and live_name != "replay" else None
        return ReplayProvider(journal, live)
    raise LLMError(f"unknown provider {name!r} (choose one of {', '.join(PROVIDERS)})")


__all__ = [
    "PROVIDERS", "LLMError", "LLMRequest", "LLMResponse", "Provider", "ToolCall",
    "cost_of", "estimate_tokens", "make_provider",
]
