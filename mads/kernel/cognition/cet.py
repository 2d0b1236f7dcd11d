"""CET, the Context Engineering Transformer: the Imperator's context, the smallest that is enough, within a budget.

The context it sends, in this order (the first part never changes for a MAD, so providers'
prompt caching applies to it):
  1. the MAD's system text;
  2. older messages of the conversation retrieved by relevance to the request (Dewey's
     full-text search when Dewey runs, else word overlap);
  3. the recent window of the conversation, newest last;
  4. the request.
Long messages (tool results above all) are shrunk to a one-line reference. Only the tool
schemas relevant to the request are offered when the MAD has many. Tokens are estimated
(about 4 characters a token) unless the provider reports its own counts.
"""
from __future__ import annotations

import re
from typing import Any

from ..llm.base import estimate_tokens
from .stages import Turn

DEFAULT_BUDGET = 3000
"""Tokens of context per request when no --context-budget is given."""
WINDOW_SHARE = 0.5
"""The share of what the budget leaves after the system text and the request that the recent window may take."""
RETRIEVED = 5
SHRINK_CHARS = 400
FEW_TOOLS = 8
_WORD = re.compile(r"[a-z0-9][a-z0-9_-]{2,}")
_STOP = frozenset("the and for you are was were what which who whom this that with from have has had not but "
                  "all any can could would should will your our their there here about into when where how why "
                  "does did done its it's him her his she they them then than too very just also".split())


def keywords(text: str) -> list[str]:
    return [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w not in _STOP]


def system_text(turn: Turn) -> str:
    return (f"You are {turn.mad}, a MAD in a multi-agent ecosystem. {turn.description}\n"
            "Use your tools when they help; answer briefly and plainly.")


def shrink(message: dict[str, Any]) -> str:
    """One line for a message: as it is when short, else its first line and a reference to it."""
    content = str(message.get("content") or "")
    line = f"{message.get('sender', '?')}: {content}"
    if len(content) <= SHRINK_CHARS:
        return line
    first = content.strip().splitlines()[0][:120]
    return f"{message.get('sender', '?')}: {first} … [message {message.get('id')}, {len(content)} characters]"


class CET:
    """Builds the Imperator's messages for a turn (see the module docstring)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.last: dict[str, Any] = {}
        """What the last build chose: tokens, window, retrieved ids (for tests and the journal)."""

    async def _history(self, turn: Turn) -> list[dict[str, Any]]:
        """The conversation's messages before this one, from Rogers (none when Rogers does not run)."""
        conversation = turn.message.conversation
        if not conversation or "rogers_get_messages" not in turn.known_tools:
            return []
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await turn.call("rogers_get_messages", {"conversation_id": conversation, "offset": offset,
                                                           "limit": 500}, False)
            found += page.get("messages", [])
            offset += 500
            if offset >= int(page.get("total") or 0) or not page.get("messages"):
                break
        return [m for m in found if m.get("id") != turn.message.id]

    async def _relevant(self, turn: Turn, older: list[dict[str, Any]], words: list[str]) -> list[str]:
        """Ids of older messages, most relevant first."""
        if not older or not words:
            return []
        if "dewey_search" in turn.known_tools:
            try:
                found = await turn.call("dewey_search", {"query": " OR ".join(words),
                                                         "conversation_id": turn.message.conversation,
                                                         "limit": 20}, False)
                ids = {m["id"] for m in older}
                return [hit["id"] for hit in found.get("hits", []) if hit["id"] in ids]
            except Exception:  # an FTS query it cannot parse: word overlap below
                pass
        wanted = set(words)
        scored = [(len(wanted & set(keywords(str(m.get("content") or "")))), index, m["id"])
                  for index, m in enumerate(older)]
        return [mid for score, _, mid in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]

    async def build(self, turn: Turn) -> list[dict[str, Any]]:
        system = system_text(turn)
        request = turn.message.content
        left = self.budget - estimate_tokens(system) - estimate_tokens(request)
        history = await self._history(turn)
        lines = [shrink(m) for m in history]
        window: list[int] = []
        used = 0
        for index in range(len(history) - 1, -1, -1):
            cost = estimate_tokens(lines[index])
            if used + cost > max(0, left) * WINDOW_SHARE and len(window) >= 2:
                break
            window.append(index)
            used += cost
        window.reverse()
        start = window[0] if window else len(history)
        older = history[:start]
        retrieved: list[int] = []
        positions = {m["id"]: i for i, m in enumerate(older)}
        for mid in await self._relevant(turn, older, keywords(request)):
            index = positions[mid]
            cost = estimate_tokens(lines[index])
            if len(retrieved) >= RETRIEVED or used + cost > left:
                break
            retrieved.append(index)
            used += cost
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        if retrieved:
            earlier = "\n".join(lines[i] for i in sorted(retrieved))
            messages.append({"role": "user", "content": f"Earlier in this conversation (retrieved):\n{earlier}"})
        if window:
            recent = "\n".join(lines[i] for i in window)
            messages.append({"role": "user", "content": f"The conversation so far (most recent):\n{recent}"})
        messages.append({"role": "user", "content": request})
        self.last = {"tokens": sum(estimate_tokens(m["content"]) for m in messages), "history": len(history),
                     "window": len(window), "retrieved": [history[i]["id"] for i in sorted(retrieved)]}
        return messages

    def tools(self, turn: Turn, offered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All the tools when they are few; else those whose name or description shares a word with the request."""
        if len(offered) <= FEW_TOOLS:
            return offered
        words = set(keywords(turn.message.content))
        chosen = [t for t in offered if words & set(keywords(f"{t['name'].replace('_', ' ')} {t['description']}"))]
        return chosen or offered
