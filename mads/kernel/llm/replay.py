"""Answers served from a recorded session: each MAD gets its recorded LLM answers in the order it asked.

A prompt that no longer matches the recorded one is served anyway (the comparison of the
two sessions reports it as a divergence) unless a live provider is given to ask instead.
"""
from __future__ import annotations

import json
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

from .base import LLMError, LLMRequest, LLMResponse, Provider, ToolCall


def _prompt_key(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False, default=str)


class ReplayProvider(Provider):
    """Recorded answers per MAD, in call order; `live` answers what the recording cannot."""

    name = "replay"

    def __init__(self, journal: Path | str, live: Provider | None = None) -> None:
        self.journal = Path(journal)
        self.live = live
        self.answers: dict[str, deque[tuple[list[dict[str, Any]] | None, dict[str, Any]]]] = {}
        self.mismatches: list[dict[str, Any]] = []
        self.unrecorded: list[str] = []
        """The MADs whose calls found no recorded answer left (and no live model to ask)."""
        self.recorded_models: list[str] = []
        self.recorded_provider = "replay"
        """The provider the recorded session used, as its config was recorded."""
        self._load()

    @property
    def reported_name(self) -> str:
        return self.recorded_provider

    def _load(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)
            rows = conn.execute("SELECT kind, payload FROM events WHERE kind IN ('llm_call', 'llm_result') "
                                "ORDER BY seq").fetchall()
            config = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            conn.close()
        except sqlite3.Error as exc:
            raise LLMError(f"cannot read recorded LLM answers from {self.journal}: {exc}") from None
        try:
            recorded = json.loads(config[0]).get("provider") if config else None
        except (ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str) and recorded:
            self.recorded_provider = recorded
        pending: dict[str, list[dict[str, Any]] | None] = {}
        for kind, payload_text in rows:
            payload = json.loads(payload_text)
            caller = payload.get("caller", "")
            if kind == "llm_call":
                pending[caller] = payload.get("prompt")
                model = payload.get("model")
                if model and model not in self.recorded_models:
                    self.recorded_models.append(model)
            else:
                self.answers.setdefault(caller, deque()).append((pending.pop(caller, None), payload))

    def models(self) -> list[str]:
        """The models the recording used, so a re-run asks (and records) the same names."""
        return list(self.recorded_models) or ["replay"]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        queue = self.answers.get(request.mad)
        if not queue:
            if self.live is not None:
                return await self.live.complete(request)
            self.unrecorded.append(request.mad)
            raise LLMError(f"the recording has no LLM answer left for {request.mad} (use --live-llm to ask a model)")
        prompt, answer = queue.popleft()
        if prompt is not None and _prompt_key(prompt) != _prompt_key(request.messages):
            self.mismatches.append({"mad": request.mad, "expected": prompt, "got": request.messages})
            if self.live is not None:
                return await self.live.complete(request)
        if not answer.get("ok", True):
            raise LLMError(answer.get("error") or "the recorded call failed")
        return LLMResponse(
            text=answer.get("text", ""),
            tool_calls=[ToolCall(c["name"], dict(c.get("arguments", {})), c.get("id", ""))
                        for c in answer.get("tool_calls", []) if isinstance(c, dict)],
            model=answer.get("model", request.model),
            input_tokens=int(answer.get("input_tokens", 0)),
            output_tokens=int(answer.get("output_tokens", 0)),
            cost=float(answer.get("cost", 0.0)),
        )
