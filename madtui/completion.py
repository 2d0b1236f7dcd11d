"""Completion for the composer: `@` completes MAD names, then that MAD's tools, then their parameters.

Headless: it works on the tool list the gateway gives (name, description, input_schema).
"""
from __future__ import annotations

import re
from typing import Any

_MENTION = re.compile(r"^(?P<head>.*?)@(?P<partial>[\w-]*)$", re.S)
_COMMAND = re.compile(r"^(?P<pre>\s*@(?P<mad>[\w-]+)\s+)(?P<tool>[\w]*)$", re.S)
_ARGS = re.compile(r"^\s*@(?P<mad>[\w-]+)\s+(?P<tool>\w+)(?P<args>(?:\s+\S+)*?)\s+(?P<partial>[\w-]*)$", re.S)


class Completer:
    """Knows the MADs and their tools; `complete(text)` returns the text completed, or None."""

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        self.set_tools(tools or [])

    def set_tools(self, tools: list[dict[str, Any]]) -> None:
        self.tools = {t["name"]: t for t in tools}
        self.mads = sorted({name.split("_", 1)[0] for name in self.tools if "_" in name and not name.startswith("mad_")})

    def tools_of(self, mad: str) -> list[str]:
        prefix = f"{mad.lower()}_"
        return sorted(name[len(prefix):] for name in self.tools if name.startswith(prefix))

    def parameters(self, mad: str, tool: str) -> list[str]:
        spec = self.tools.get(f"{mad.lower()}_{tool}") or self.tools.get(tool)
        if spec is None:
            return []
        schema = spec.get("input_schema", {})
        required = schema.get("required", [])
        names = list(schema.get("properties", {}))
        return sorted(names, key=lambda n: (n not in required, names.index(n)))

    def candidates(self, text: str) -> list[str]:
        """Every full completion of the text, best first."""
        match = _ARGS.match(text)
        if match and match["partial"] is not None and "=" not in match["partial"]:
            given = {a.split("=", 1)[0].rstrip(":") for a in match["args"].split()}
            params = [p for p in self.parameters(match["mad"], match["tool"]) if p not in given]
            stem = text[: len(text) - len(match["partial"])]
            return [f"{stem}{p}=" for p in params if p.startswith(match["partial"])]
        match = _COMMAND.match(text)
        if match and match["mad"].lower() in self.mads:
            return [f"{match['pre']}{tool} " for tool in self.tools_of(match["mad"]) if tool.startswith(match["tool"])]
        match = _MENTION.match(text)
        if match and (not match["head"] or match["head"][-1].isspace()):
            partial = match["partial"].lower()
            return [f"{match['head']}@{mad.capitalize()} " for mad in self.mads if mad.startswith(partial)]
        return []

    def complete(self, text: str) -> str | None:
        found = self.candidates(text)
        return found[0] if found else None
