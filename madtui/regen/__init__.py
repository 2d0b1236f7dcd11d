"""`mad regen`: a new version of a MAD, gated by recorded behaviour, reviewed as a behaviour diff, swapped in live.

The loop: a candidate (given with --candidate, or asked of the model through Fiedler) is kept
in MAD_HOME/regen/<mad>/<n>/; the static gate loads it in a child process (compile, import,
name, tool interface, migrations on a copy of the state, self_check); a static failure of a
generated candidate goes back to the model, up to --attempts. The behavioural gate re-runs
recordings (current code twice to learn the noise, the candidate once) in a pool of worker
processes. The report says what changed in behaviour per MAD and recording, the interface and
code diffs, and what it cost. Only --apply writes the module (atomically, the old one kept for
--rollback); a running ecosystem picks it up through hot reload.
"""
from __future__ import annotations

import difflib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mads.kernel import Config, Ecosystem, UsageError

from . import generate
from .behaviour import behavioural_gate, code_fingerprint, recordings_of, resolve_against
from .probe import tool_interface
from .static import static_gate
from .store import Workspace, sha256

Emit = Callable[[str, bool, dict[str, Any]], None]
"""Record one step (regen event): step, ok, detail."""
Progress = Callable[[dict[str, Any]], None]


@dataclass
class RegenRequest:
    mad: str
    instruction: str = ""
    candidate: Path | None = None
    against: list[str] = field(default_factory=list)
    apply: bool = False
    accept_changes: bool = False
    allow_interface_change: bool = False
    attempts: int = 3
    home: Path = Path(".mad")
    mad_path: list[Path] = field(default_factory=list)
    include_package: bool = True
    sessions: Path = Path("sessions")


@dataclass
class Current:
    """The MAD as it is now: its module file, source and tools."""

    mad: str
    path: Path
    source: str
    tools: dict[str, Any]
    fingerprint: str
    """The code every re-run depends on now (see `behaviour.code_fingerprint`)."""
    mads: set[str]
    """Every MAD found now."""


def current_version(mad: str, home: Path, mad_path: list[Path], include_package: bool = True) -> Current:
    """Find the module that defines the MAD now; UsageError (exit 2) when none does."""
    eco = Ecosystem(Config(home=home, mad_path=mad_path, include_package=include_package, sample_interval=0))
    eco.load()
    name = mad.lower().lstrip("@")
    for module in eco.modules:
        for cls in module.mads:
            if cls.name == name:
                return Current(name, module.path, module.source, tool_interface(cls),
                               code_fingerprint([m.sha256 for m in eco.modules]), set(eco.runners))
    known = ", ".join(sorted(eco.runners)) or "none"
    raise UsageError(f"no MAD named {mad!r} (found: {known})")


def code_diff(old: str, new: str, path: Path) -> dict[str, Any]:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{path.name}", f"b/{path.name}",
                                      lineterm=""))
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return {"lines_added": added, "lines_removed": removed, "lines_before": len(old.splitlines()),
            "lines_after": len(new.splitlines()), "unified": "\n".join(lines)}


async def regen(request: RegenRequest, *, llm: Any = None, emit: Emit | None = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """Gate one candidate (given, or generated with `llm`: Fiedler's gateway) and report; apply when asked.

    The report's "exit" is the command's exit code: 0 passed and same behaviour, 1 a gate failed or
    behaviour differs.
    """
    def note(step: str, ok: bool, detail: dict[str, Any]) -> None:
        if emit is not None:
            emit(step, ok, detail)

    def say(update: dict[str, Any]) -> None:
        if progress is not None:
            progress(update)

    if request.candidate is None and llm is None:
        raise UsageError("give --candidate FILE, or a provider to generate one (--provider)")
    if request.candidate is not None and not request.candidate.is_file():
        raise UsageError(f"candidate file not found: {request.candidate}")
    if request.attempts < 1:
        raise UsageError("--attempts must be at least 1")
    resolve_against(request.against, request.sessions)
    current = current_version(request.mad, request.home, request.mad_path, request.include_package)
    mad = current.mad
    workspace = Workspace(request.home, mad)
    generation: dict[str, Any] = {"generated": request.candidate is None, "attempts": 0, "input_tokens": 0,
                                  "output_tokens": 0, "cost": 0.0, "errors": []}
    report: dict[str, Any] = {"mad": mad, "module": str(current.path), "instruction": request.instruction,
                              "generation": generation, "applied": None}
    messages: list[dict[str, Any]] = []
    if request.candidate is None:
        chosen, _ = recordings_of(mad, request.sessions, request.against)
        recorded = generate.exchanges(mad, [r.path for r in chosen])
        messages = generate.first_prompt(mad, request.instruction, current.source, current.tools, recorded)
    attempts = 1 if request.candidate is not None else request.attempts
    folder: Path | None = None
    source = ""
    static: dict[str, Any] = {}
    for attempt in range(1, attempts + 1):
        if request.candidate is not None:
            source = request.candidate.read_text(encoding="utf-8")
        else:
            say({"step": "generating", "attempt": attempt, "of": attempts})
            response = await llm.complete("regen", messages)
            generation["attempts"] = attempt
            generation["input_tokens"] += response.input_tokens
            generation["output_tokens"] += response.output_tokens
            generation["cost"] += response.cost
            source = generate.code_of(response.text)
            note("generate", True, {"mad": mad, "attempt": attempt, "input_tokens": response.input_tokens,
                                    "output_tokens": response.output_tokens, "sha256": sha256(source)})
        folder = workspace.new_candidate(source)
        say({"step": "static", "attempt": attempt})
        static = await static_gate(folder / "candidate.py", mad, home=request.home, mad_path=request.mad_path,
                                   include_package=request.include_package, current_tools=current.tools,
                                   allow_interface_change=request.allow_interface_change)
        note("static", static["ok"], {"mad": mad, "candidate": str(folder), **static})
        if static["ok"] or request.candidate is not None:
            break
        generation["errors"].append({"attempt": attempt, "stage": static["stage"], "error": static["error"]})
        if attempt < attempts:
            messages = generate.retry_prompt(messages, response.text, static["stage"], static["error"])
    assert folder is not None
    report["candidate"] = {"number": int(folder.name), "folder": str(folder), "path": str(folder / "candidate.py"),
                           "sha256": sha256(source)}
    report["static"] = {k: static.get(k) for k in ("ok", "stage", "error")}
    report["interface"] = static.get("interface")
    report["code"] = code_diff(current.source, source, current.path)
    behaviour: dict[str, Any] | None = None
    if static["ok"]:
        with tempfile.TemporaryDirectory(prefix="mad-regen-") as scratch:
            behaviour = await behavioural_gate(mad, folder / "candidate.py", sessions=request.sessions,
                                               against=request.against, mad_path=request.mad_path or None,
                                               scratch=Path(scratch), cache=workspace.cache,
                                               fingerprint=current.fingerprint, known=current.mads,
                                               progress=say)
        note("behaviour", behaviour["ok"], {"mad": mad, "recordings": [
            {k: r.get(k) for k in ("recording", "status", "reason", "diverged")} for r in behaviour["recordings"]],
            "seconds": behaviour["seconds"], "error": behaviour.get("error")})
    report["behaviour"] = behaviour
    report["gate"] = {"recordings": len(behaviour["recordings"]) if behaviour else 0,
                      "events": behaviour["events"] if behaviour else 0,
                      "seconds": behaviour["seconds"] if behaviour else 0.0, "llm_tokens": 0}
    passed = bool(static["ok"] and behaviour is not None and behaviour["ok"])
    differs = bool(static["ok"] and behaviour is not None and not behaviour["ok"] and "error" not in behaviour)
    report["verdict"] = "same" if passed else "differs" if differs else "failed"
    report["exit"] = 0 if passed else 1
    if request.apply and (passed or (differs and request.accept_changes)):
        report["applied"] = workspace.apply(current.path, source, folder)
        note("apply", True, {"mad": mad, **report["applied"], "accepted_changes": not passed})
    note("report", passed, {"mad": mad, "verdict": report["verdict"], "exit": report["exit"],
                            "candidate": str(folder)})
    workspace.save_report(folder, report)
    return report


def rollback(mad: str, home: Path) -> dict[str, Any]:
    """Restore the version the last --apply replaced."""
    return Workspace(home, mad.lower().lstrip("@")).rollback()
