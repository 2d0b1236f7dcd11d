"""The static gate: the candidate in a child process (see `probe.py`), its tool interface against the current one."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from mads.kernel.context import state_path

PROBE_TIMEOUT = 60.0


def copy_state(home: Path, mad: str, into: Path) -> None:
    """A consistent copy of the MAD's state database (SQLite's backup: safe while the ecosystem writes it)."""
    source = state_path(home, mad)
    target = state_path(into, mad)
    if not source.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def interface_diff(current: dict[str, Any], candidate: dict[str, Any]) -> dict[str, list[str]]:
    """Tools added, removed, and changed (description or input schema) by the candidate."""
    return {
        "added": sorted(set(candidate) - set(current)),
        "removed": sorted(set(current) - set(candidate)),
        "changed": sorted(name for name in set(current) & set(candidate)
                          if current[name]["input_schema"] != candidate[name]["input_schema"]),
        "described": sorted(name for name in set(current) & set(candidate)
                            if current[name]["description"] != candidate[name]["description"]),
    }


async def static_gate(candidate: Path, mad: str, *, home: Path, mad_path: list[Path], include_package: bool,
                      current_tools: dict[str, Any], allow_interface_change: bool) -> dict[str, Any]:
    """The static gate's result: {"ok", "stage", "error", "interface"}."""
    with tempfile.TemporaryDirectory(prefix="mad-regen-state-") as scratch:
        copy_state(home, mad, Path(scratch))
        request = {"candidate": str(candidate), "mad": mad, "home": scratch, "mad_path": [str(p) for p in mad_path],
                   "include_package": include_package}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "madtui.regen.probe", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            return {"ok": False, "stage": "import", "interface": None,
                    "error": f"the candidate did not load within {PROBE_TIMEOUT:.0f} s"}
    try:
        answer = json.loads(out.decode() or "null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = err.decode(errors="replace").strip().splitlines()
        return {"ok": False, "stage": "import", "interface": None,
                "error": f"the candidate's check process died (exit {process.returncode})"
                         + (f": {tail[-1]}" if tail else "")}
    result: dict[str, Any] = {"ok": answer["ok"], "stage": answer.get("stage"), "error": answer.get("error"),
                              "interface": None}
    if answer.get("stage") in ("compile", "import", "name"):
        return result
    diff = interface_diff(current_tools, answer.get("tools") or {})
    result["interface"] = diff
    if result["ok"] and (diff["removed"] or diff["changed"]) and not allow_interface_change:
        what = [f"removes {', '.join(diff['removed'])}"] if diff["removed"] else []
        what += [f"changes the schema of {', '.join(diff['changed'])}"] if diff["changed"] else []
        result.update(ok=False, stage="interface",
                      error=f"the candidate {' and '.join(what)} (pass --allow-interface-change to accept)")
    return result
