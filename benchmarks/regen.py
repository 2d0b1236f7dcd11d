"""Regeneration figure: gating a candidate of Horace on 10 recordings, against `mad rerun` of each in turn."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mads

from .harness import Sample, figure
from .replay import ENVIRON, record_inputs

RECORDINGS = 10
_folder: tempfile.TemporaryDirectory[str] | None = None
_recorded: dict[int, list[Path]] = {}


async def recordings(inputs: int) -> list[Path]:
    """RECORDINGS sessions of `inputs` human commands to Horace and Dewey (made once per process)."""
    global _folder
    if inputs not in _recorded:
        if _folder is None:
            _folder = tempfile.TemporaryDirectory(prefix="mad-bench-regen-")
        made = []
        for index in range(RECORDINGS):
            path, _ = await record_inputs(Path(_folder.name) / f"{inputs}-{index}", inputs)
            made.append(path)
        _recorded[inputs] = made
    return _recorded[inputs]


def rerun_one_after_another(paths: list[Path], sessions: Path) -> float:
    """Seconds of `mad rerun` on each recording, one process after another (the baseline)."""
    started = time.perf_counter()
    for path in paths:
        done = subprocess.run([sys.executable, "-m", "madtui", "rerun", str(path), "--json", "--sessions",
                               str(sessions)], capture_output=True, text=True, env={**ENVIRON, "PATH": ""})
        if done.returncode != 0:
            raise RuntimeError(f"mad rerun {path.name} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return time.perf_counter() - started


@figure("regen_gate_time", unit="s", target="value < 10", n=100, quick_n=30)
async def regen_gate_time(n: int) -> Sample:
    """Seconds for `mad regen --candidate` to gate a rewrite of Horace on 10 recordings of n inputs each (100;
    30 with --quick): static gate, the current code re-run twice and the candidate once per recording, in
    parallel over the cores, nothing cached. Baseline: `mad rerun` of the same 10 recordings one after another.
    """
    from madtui.regen import RegenRequest, regen

    paths = await recordings(n)
    source = (Path(mads.__file__).parent / "horace.py").read_text()
    with tempfile.TemporaryDirectory(prefix="mad-bench-regen-round-") as scratch:
        root = Path(scratch)
        candidate = root / "horace.py"
        candidate.write_text(source.replace("def _now() -> str:", "def _now() -> str:  # in UTC"))
        baseline = rerun_one_after_another(paths, root / "reruns")
        started = time.perf_counter()
        report = await regen(RegenRequest(mad="horace", candidate=candidate, home=root / "home",
                                          sessions=paths[0].parent, against=[str(p) for p in paths]))
        took = time.perf_counter() - started
    if report["exit"] != 0 or len(report["behaviour"]["recordings"]) != RECORDINGS:
        raise RuntimeError(f"the rewrite did not pass the gate: {report['verdict']} {report['static']}")
    return Sample(took, baseline)


_mutation: dict[int, dict[str, Any]] = {}


async def _mutation_result(count: int) -> dict[str, Any]:
    """The mutation set's evaluation, once per process and size (both figures read it)."""
    if count not in _mutation:
        from .mutation import evaluate, record_horace

        global _folder
        if _folder is None:
            _folder = tempfile.TemporaryDirectory(prefix="mad-bench-regen-")
        root = Path(_folder.name) / f"mutation-{count}"
        root.mkdir()
        session = await record_horace(root / "recorded")
        (root / "gate").mkdir()
        _mutation[count] = await evaluate(session, root / "gate", count)
    return _mutation[count]


@figure("regen_mutants_caught", unit="share", target="value >= 0.95", n=30, quick_n=30)
async def regen_mutants_caught(n: int) -> Sample:
    """Share of the behaviour-changing mutants (of n mutmut-style mutants of Horace, 30) that `mad regen` fails
    (exit 1), behaviour-changing as an independent plain re-run says. Baseline: 1, all of them."""
    result = await _mutation_result(n)
    return Sample(result["caught"] / max(1, result["behaviour_changing"]), 1.0)


@figure("regen_rewrites_failed", unit="rewrites", target="value == 0", n=30, quick_n=30)
async def regen_rewrites_failed(n: int) -> Sample:
    """Behaviour-preserving rewrites of Horace (reformatted, methods reordered, helper extracted, locals renamed,
    a private method renamed) that `mad regen` fails. Baseline: the number of rewrites."""
    result = await _mutation_result(n)
    return Sample(float(len(result["false_alarms"])), float(result["rewrites"]))
