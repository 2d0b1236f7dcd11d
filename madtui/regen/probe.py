"""The static gate's child process: compile, import, name, tools, migrations on a copy of the state, self_check.

It runs in its own process so that a candidate's import-time code (a loop, an exit, a crash)
cannot reach the command that gates it. It reads one JSON request on stdin and prints one JSON
answer on stdout:

    request: {"candidate", "mad", "home", "mad_path": [...], "include_package": bool}
    answer:  {"ok": bool, "stage": "compile"|"import"|"name"|"migrations"|"self_check"|null,
              "error": str|null, "tools": {name: {"description", "input_schema"}}}
"""
from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

from mads.kernel.reload import _where as where
from mads.kernel.supervisor import one_line


def tool_interface(cls: Any) -> dict[str, dict[str, Any]]:
    """A MAD class's tools as the interface the gate compares: description and input schema per tool."""
    return {name: {"description": spec.description, "input_schema": spec.input_schema}
            for name, spec in sorted(cls.tools.items())}


def _where(exc: BaseException, path: Path) -> str:
    """`candidate.py:line` of the deepest frame in the candidate (reload's rule, the folder left out)."""
    return where(exc, path).replace(str(path), path.name)


async def probe(request: dict[str, Any]) -> dict[str, Any]:
    from mads.kernel import Config, Ecosystem
    from mads.kernel.discovery import DiscoveryError, load_path_module

    candidate, mad = Path(request["candidate"]), request["mad"]
    answer: dict[str, Any] = {"ok": False, "stage": None, "error": None, "tools": {}}
    source = candidate.read_text(encoding="utf-8")
    try:
        compile(source, str(candidate), "exec")
    except SyntaxError as exc:
        return {**answer, "stage": "compile", "error": f"{candidate.name}:{exc.lineno}: SyntaxError: {exc.msg}"}
    try:
        module = load_path_module(candidate, source)
    except DiscoveryError as exc:
        return {**answer, "stage": "import", "error": str(exc).replace(str(candidate), candidate.name)}
    classes = {cls.name: cls for cls in module.mads}
    if mad not in classes:
        found = ", ".join(sorted(classes)) or "none"
        return {**answer, "stage": "name", "error": f"the candidate defines no MAD named {mad!r} (it defines: {found})"}
    answer["tools"] = tool_interface(classes[mad])
    config = Config(home=Path(request["home"]), mad_path=[Path(p) for p in request.get("mad_path", [])],
                    include_package=request.get("include_package", True), replace=[candidate], only=[mad],
                    sample_interval=0, environ=dict(os.environ), provider="offline")
    eco = Ecosystem(config)
    try:
        eco.load()
    except Exception as exc:
        return {**answer, "stage": "import", "error": one_line(exc)}
    runner = eco.runners[mad]
    cls = runner.cls
    db = runner.ctx.state
    if cls.migrations is not None:
        try:
            cls.migrations.apply(db)
        except Exception as exc:
            return {**answer, "stage": "migrations", "error": f"{_where(exc, candidate)}: migration failed: "
                                                              f"{one_line(exc)}"}
    check = getattr(cls, "self_check", None)
    if check is not None:
        try:
            instance = cls(runner.ctx)
            outcome = instance.self_check()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            return {**answer, "stage": "self_check", "error": f"{_where(exc, candidate)}: self_check failed: "
                                                              f"{one_line(exc)}"}
    return {**answer, "ok": True}


def main() -> None:
    request = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")  # the answer's own channel: what the candidate prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        answer = asyncio.run(probe(request))
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate does, the gate gets one answer
        answer = {"ok": False, "stage": "import", "error": one_line(exc), "tools": {}}
    out.write(json.dumps(answer, default=str))
    out.flush()
    os._exit(0)  # the candidate's threads or atexit hooks must not hold the answer back


if __name__ == "__main__":
    main()
