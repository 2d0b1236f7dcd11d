"""The default provider: no model, and a reply that says how to configure one."""
from __future__ import annotations

from .base import LLMRequest, LLMResponse, Provider

HOW_TO_CONFIGURE = (
    "No language model is configured, so I can only run deterministic commands "
    "(for example `@Horace list_files` or `@Dewey search query=budget`). "
    "To answer prose, start with --provider openai (set OPENAI_API_KEY, and OPENAI_BASE_URL "
    "for Ollama, vLLM or llama.cpp), --provider anthropic (set ANTHROPIC_API_KEY), "
    "or --provider scripted with MAD_SCRIPT=replies.jsonl."
)


class OfflineProvider(Provider):
    """Answers every prompt with how to configure a model; costs nothing."""

    name = "offline"

    def models(self) -> list[str]:
        return ["offline"]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(text=HOW_TO_CONFIGURE, model="offline")
