"""The behavioural gate: recordings re-run against the current code twice and against the candidate, noise learned.

Every re-run happens in a pool of worker processes (`worker.py`), as many as the cores, each
re-running recordings one after another, so a candidate's fault stays in its worker and
the imports are paid once per worker. LLM answers come from the recording; a call it has no
answer for makes the recording unusable.

Noise is learned, not listed (as Diffy does): the current code's two re-runs of a recording
are compared step by step, and every value that differs between them is noise at that place.
A text that differs in a few words keeps the others: only the words that moved are ignored.
The candidate's re-run is then compared with the current code's first, noise ignored.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mads.kernel.errors import UsageError
from mads.kernel.journal import reader


LAST_RECORDINGS = 5
DERIVED = ("rerun", "regen")
"""Commands whose recordings are made from others: never used as evidence."""
_WORD = re.compile(r"\w+|[^\w\s]+|\s+")
_NUMERIC = re.compile(r"\d+|[:.\-/T+Z]")
"""Tokens of a number written out (a time of day, a date, a decimal): a varying one varies as a whole."""
ANY = "any"


SERVICES = ("fiedler", "turing", "rogers")
"""Started in every re-run of the gate: the LLM gateway, the secrets keeper, the conversation keeper."""


@dataclass
class Recording:
    id: str
    path: Path
    golden: bool

    def cast(self, mad: str, known: set[str]) -> list[str]:
        """The MADs a re-run starts: those the recording shows at work, the services, and the one gated.
        Another MAD (an isolated Hopper costs a process) has no part in the recording's story; a candidate
        that reaches for one gets an unknown tool, and that difference is reported."""
        return sorted({*reader.active_mads(self.path), *SERVICES, mad} & known)


def recordings_of(mad: str, sessions: Path, against: list[str]) -> tuple[list[Recording], str]:
    """The recordings to gate on, and which rule chose them (against, golden, last)."""
    if against:
        chosen = []
        for ref in against:
            path = reader.resolve(ref, sessions)
            chosen.append(Recording(path.stem, path, bool(reader.read_meta(path).get("golden"))))
        return chosen, "against"
    involving: list[Recording] = []
    for path in reader.session_files(sessions):
        try:
            summary = reader.summarize(path)
            meta = reader.read_meta(path)
        except Exception:  # an unreadable file is not evidence
            continue
        if mad in summary.mads and meta.get("command") not in DERIVED:
            involving.append(Recording(summary.id, path, bool(meta.get("golden"))))
    golden = [r for r in involving if r.golden]
    if golden:
        return golden, "golden"
    return involving[-LAST_RECORDINGS:], "last"


# the worker pool --------------------------------------------------------------------------------------
JOB_TIMEOUT = 300.0
"""Seconds one re-run may take in a worker before the worker is killed and the recording called unusable."""


class Pool:
    """Worker processes re-running jobs; a worker that dies or hangs fails its job and is replaced."""

    def __init__(self, size: int, job_timeout: float = JOB_TIMEOUT) -> None:
        self.size = max(1, size)
        self.job_timeout = job_timeout

    @staticmethod
    async def _start() -> asyncio.subprocess.Process:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "madtui.regen.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=2**26)
        assert worker.stdout is not None
        await worker.stdout.readline()  # ready: its imports are done
        return worker

    @staticmethod
    async def _kill(worker: asyncio.subprocess.Process) -> int:
        if worker.returncode is None:
            worker.kill()
        return await worker.wait()

    async def run(self, jobs: list[dict[str, Any]], done: Callable[[int, dict[str, Any]], None]) -> list[dict[str, Any]]:
        """Every job's answer, in order; `done` hears of each as it ends. Cancelled: the workers are killed."""
        results: list[dict[str, Any]] = [{"error": "not run"}] * len(jobs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(jobs)):
            queue.put_nowait(index)

        async def serve() -> None:
            worker: asyncio.subprocess.Process | None = None
            try:
                while not queue.empty():
                    index = queue.get_nowait()
                    if worker is None or worker.returncode is not None:
                        worker = await self._start()
                    assert worker.stdin is not None and worker.stdout is not None
                    line, error = b"", None
                    try:
                        worker.stdin.write((json.dumps(jobs[index]) + "\n").encode())
                        await worker.stdin.drain()
                        line = await asyncio.wait_for(worker.stdout.readline(), self.job_timeout)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    except asyncio.TimeoutError:
                        error = f"the re-run took longer than {self.job_timeout:g} s"
                    if line:
                        results[index] = json.loads(line)
                    else:
                        code = await self._kill(worker)
                        results[index] = {"error": error or f"the re-run process died (exit {code})"}
                        worker = None
                    done(index, results[index])
            except BaseException:
                if worker is not None:
                    await asyncio.shield(self._kill(worker))
                raise
            if worker is not None and worker.returncode is None:
                assert worker.stdin is not None
                worker.stdin.close()
                try:
                    await asyncio.wait_for(worker.wait(), 10)
                except asyncio.TimeoutError:
                    await self._kill(worker)

        await asyncio.gather(*(serve() for _ in range(min(self.size, len(jobs)))))
        return results


# noise ----------------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _learn(a: Any, b: Any, path: tuple[Any, ...], into: dict[tuple[Any, ...], Any]) -> None:
    """Record where two runs of the same code differ: ANY, or the positions of the words that differ."""
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for key in a:
            _learn(a[key], b[key], path + (key,), into)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            _learn(x, y, path + (index,), into)
        return
    if isinstance(a, str) and isinstance(b, str):
        wa, wb = _words(a), _words(b)
        if len(wa) == len(wb):
            into[path] = _widened(wa, {i for i, (x, y) in enumerate(zip(wa, wb)) if x != y})
            return
    into[path] = ANY


def _widened(words: list[str], varying: set[int]) -> frozenset[int]:
    """The varying words, each numeric one widened to the whole number it is part of (12:03:04.5 varies whole:
    the two runs may have agreed on the seconds by chance)."""
    masked = set(varying)
    for index in varying:
        if not words[index].isdigit():
            continue
        for step in (-1, 1):
            at = index + step
            while 0 <= at < len(words) and _NUMERIC.fullmatch(words[at]):
                masked.add(at)
                at += step
    return frozenset(masked)


def _alike(a: Any, b: Any, path: tuple[Any, ...], noise: dict[tuple[Any, ...], Any]) -> bool:
    """Equal but for the learned noise."""
    mask = noise.get(path)
    if mask == ANY:
        return True
    if mask is not None and isinstance(a, str) and isinstance(b, str):
        wa, wb = _words(a), _words(b)
        return len(wa) == len(wb) and all(x == y for i, (x, y) in enumerate(zip(wa, wb)) if i not in mask)
    if a == b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_alike(a[k], b[k], path + (k,), noise) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_alike(x, y, path + (i,), noise) for i, (x, y) in enumerate(zip(a, b)))
    return False


Steps = dict[str, list[tuple[int, dict[str, Any]]]]


def learn_noise(first: Steps, second: Steps) -> tuple[dict[tuple[Any, ...], Any], str | None]:
    """Where two runs of the same code differ, keyed by (mad, step index, field path...); or why they cannot agree."""
    noise: dict[tuple[Any, ...], Any] = {}
    for mad in sorted(set(first) | set(second)):
        a, b = first.get(mad, []), second.get(mad, [])
        if len(a) != len(b):
            return noise, f"the current code does not re-run it the same way twice ({mad}: {len(a)} vs {len(b)} events)"
        for index, ((_, x), (_, y)) in enumerate(zip(a, b)):
            if x.get("kind") != y.get("kind"):
                return noise, f"the current code does not re-run it the same way twice ({mad} event {index + 1})"
            _learn(x, y, (mad, index), noise)
    return noise, None


def compare_with_noise(current: Steps, candidate: Steps, noise: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    """Per MAD: same, or the first event where the candidate differs from the current code (noise ignored)."""
    mads: dict[str, Any] = {}
    for mad in sorted(set(current) | set(candidate)):
        a, b = current.get(mad, []), candidate.get(mad, [])
        divergence = None
        for index in range(max(len(a), len(b))):
            left = a[index] if index < len(a) else None
            right = b[index] if index < len(b) else None
            if left is None or right is None or not _alike(left[1], right[1], (mad, index), noise):
                divergence = {"index": index, "seq_recorded": left[0] if left else None,
                              "seq_candidate": right[0] if right else None,
                              "recorded": left[1] if left else "<no more events>",
                              "candidate": right[1] if right else "<no more events>"}
                break
        mads[mad] = {"same": divergence is None, "events": [len(a), len(b)], "first_divergence": divergence}
    return mads


# the gate -------------------------------------------------------------------------------------------------
async def behavioural_gate(mad: str, candidate: Path, *, sessions: Path, against: list[str],
                           mad_path: list[Path] | None, scratch: Path, cache: Path | None = None,
                           fingerprint: str = "", known: set[str] | None = None, progress: Callable[[dict[str, Any]], None] | None = None
                           ) -> dict[str, Any]:
    """Re-run the chosen recordings (current code twice, the candidate once) and compare; see the module docstring.

    With `cache`, the current code's two re-runs of a recording are kept under its `fingerprint` (the
    code of every module and of the kernel) and reused while neither the code nor the recording changes.
    """
    started = time.perf_counter()
    chosen, rule = recordings_of(mad, sessions, against)
    result: dict[str, Any] = {"ok": False, "chosen_by": rule, "recordings": [], "events": 0, "seconds": 0.0,
                              "llm_tokens": 0, "reused": 0}
    if not chosen:
        result["error"] = (f"no recording involves {mad} in {sessions}: record a session first "
                           f"(mad tui, mad record) or pass --against")
        return result
    runs = ("current", "again", "candidate")
    answers: dict[tuple[int, str], dict[str, Any]] = {}
    jobs: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    for i, recording in enumerate(chosen):
        kept = _cached(cache, fingerprint, recording.path)
        try:
            cast = recording.cast(mad, known) if known else None
        except Exception:  # an unreadable recording: its re-runs will say why
            cast = None
        for run in runs:
            if kept is not None and run != "candidate":
                answers[(i, run)] = json.loads((kept / f"{run}.json").read_text())
                continue
            keys.append((i, run))
            jobs.append({"source": str(recording.path), "sessions": str(scratch / f"{i}-{run}"),
                         "compare": run == "current",
                         "mad_path": [str(p) for p in mad_path] if mad_path is not None else None,
                         "replace": [str(candidate)] if run == "candidate" else [], "only": cast})
        result["reused"] += kept is not None
    left = {i: sum(1 for key in keys if key[0] == i) for i in range(len(chosen))}

    def done(index: int, _: dict[str, Any]) -> None:
        left[keys[index][0]] -= 1
        if progress is not None and left[keys[index][0]] == 0:
            progress({"step": "behaviour", "done": sum(1 for n in left.values() if n == 0), "of": len(chosen)})

    if progress is not None:
        progress({"step": "behaviour", "done": 0, "of": len(chosen)})
    for key, answer in zip(keys, await Pool(os.cpu_count() or 1).run(jobs, done)):
        answers[key] = answer
    events = 0
    for i, recording in enumerate(chosen):
        first, again, cand = (answers[(i, run)] for run in runs)
        entry: dict[str, Any] = {"recording": recording.id, "path": str(recording.path), "golden": recording.golden}
        problem = next((a["error"] for a in (first, again, cand) if "error" in a), None)
        if problem is None and any(a.get("llm_unrecorded") for a in (first, again, cand)):
            problem = "an LLM call was not recorded (the re-run asked what the recording cannot answer)"
        if problem is not None:
            result["recordings"].append({**entry, "status": "unusable", "reason": problem})
            continue
        steps = [{mad: [(seq, step) for seq, step in found] for mad, found in a["steps"].items()}
                 for a in (first, again, cand)]
        noise, unstable = learn_noise(steps[0], steps[1])
        if unstable:
            result["recordings"].append({**entry, "status": "unusable", "reason": unstable})
            continue
        _keep(cache, fingerprint, recording.path, first, again)
        mads = compare_with_noise(steps[0], steps[2], noise)
        diverged = [m for m, r in mads.items() if not r["same"]]
        events += sum(len(s) for s in steps[2].values())
        result["recordings"].append({
            **entry, "status": "differs" if diverged else "same", "diverged": diverged, "inputs": cand.get("inputs"),
            "noise": sorted(".".join(str(p) for p in key) for key in noise),
            "current_matches_recording": bool(first.get("same_as_recording")), "mads": mads})
    usable = [r for r in result["recordings"] if r["status"] != "unusable"]
    result["events"] = events
    result["seconds"] = round(time.perf_counter() - started, 3)
    if not usable:
        result["error"] = "no recording could be re-run: " + "; ".join(
            f"{r['recording']}: {r['reason']}" for r in result["recordings"])
        return result
    result["ok"] = all(r["status"] == "same" for r in usable)
    return result


def _cache_key(fingerprint: str, recording: Path) -> str:
    stat = recording.stat()
    return hashlib.sha256(f"{fingerprint}|{recording.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def _cached(cache: Path | None, fingerprint: str, recording: Path) -> Path | None:
    if cache is None or not fingerprint:
        return None
    folder = cache / _cache_key(fingerprint, recording)
    return folder if (folder / "meta.json").exists() else None


def _keep(cache: Path | None, fingerprint: str, recording: Path, first: dict[str, Any], again: dict[str, Any]) -> None:
    """Keep the current code's two re-runs of a recording (copied whole, then named as complete)."""
    if cache is None or not fingerprint or _cached(cache, fingerprint, recording) is not None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
    for run, answer in (("current", first), ("again", again)):
        (building / f"{run}.json").write_text(json.dumps(answer, default=str))
    (building / "meta.json").write_text(json.dumps({"recording": str(recording)}))
    try:
        building.rename(cache / _cache_key(fingerprint, recording))  # whole or not at all
    except OSError:  # another gate kept the same runs meanwhile
        shutil.rmtree(building, ignore_errors=True)


def code_fingerprint(module_hashes: list[str]) -> str:
    """The code a re-run depends on: every MAD module's hash and the kernel's and re-run's own source."""
    import madtui
    import mads.kernel

    digest = hashlib.sha256()
    for text in sorted(module_hashes):
        digest.update(text.encode())
    roots = [Path(mads.kernel.__file__).parent, Path(madtui.__file__).parent]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def resolve_against(against: list[str], sessions: Path) -> None:
    """Fail fast (exit 2) on an --against that names no recording."""
    for ref in against:
        reader.resolve(ref, sessions)
    if len(set(against)) != len(against):
        raise UsageError("--against names the same recording twice")
