"""Asking the model for a whole new module: the prompt, and the code taken from its reply."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from mads.kernel.journal import reader

from ..diff import behaviour

EXCHANGES = 8
"""Recorded exchanges of the MAD shown to the model: enough to show its voice, few enough to stay cheap."""
_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)

SYSTEM = (
    "You rewrite one MAD module of the `mad` ecosystem, whole. Keep its MAD class name, its tools and their "
    "schemas unless the instruction says otherwise, and keep its migrations: add new numbered ones, never edit "
    "old ones. Reply with the complete new module in one ```python block.")


def authoring_page() -> str:
    """The authoring guide shipped with the package."""
    return resources.files("mads").joinpath("authoring.md").read_text(encoding="utf-8")


def exchanges(mad: str, recordings: list[Path], limit: int = EXCHANGES) -> list[dict[str, Any]]:
    """A few recorded steps of this MAD: tool calls with their results, messages it sent."""
    found: list[dict[str, Any]] = []
    for path in recordings:
        try:
            steps = behaviour(path).steps.get(mad, [])
        except Exception:
            continue
        for _, step in steps:
            if step["kind"] in ("tool_call", "tool_result", "message"):
                found.append(step)
            if len(found) >= limit:
                return found
    return found


def first_prompt(mad: str, instruction: str, source: str, tools: dict[str, Any],
                 recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = "\n".join(json.dumps(step, ensure_ascii=False, default=str)[:600] for step in recorded) or "(none)"
    user = (f"# Instruction\n{instruction or '(none: rewrite it, keeping its behaviour)'}\n\n"
            f"# The module of {mad} now\n```python\n{source}\n```\n\n"
            f"# Its tools (name: input schema)\n```json\n{json.dumps(tools, indent=1)}\n```\n\n"
            f"# Recorded exchanges of {mad}\n{shown}\n\n"
            f"# How MADs are written\n{authoring_page()}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def retry_prompt(messages: list[dict[str, Any]], reply: str, stage: str, error: str) -> list[dict[str, Any]]:
    """The conversation so far, the failed reply and the gate's error: ask again."""
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": f"That module failed the {stage} check: {error}\n"
                                        "Reply with the whole corrected module in one ```python block."}]


def code_of(reply: str) -> str:
    """The module in a reply: its longest fenced Python block, else the whole reply."""
    blocks = _BLOCK.findall(reply)
    code = max(blocks, key=len) if blocks else reply
    return code.strip("\n") + "\n"


def recorded_paths(recordings: list[Any]) -> list[Path]:
    return [Path(r.path) for r in recordings if Path(r.path).exists() and reader.read_meta(Path(r.path))]
