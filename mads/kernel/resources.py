"""Resource use per MAD: once-a-second samples from the in-process accounts, py-spy profiles, memory.

Accounting (CPU and wall time in handlers, traffic, tokens, cost, errors) is exact and
always on; py-spy sampling attributes each stack to the MAD whose module is on it; memory
is attributed on demand by tracemalloc, each live allocation to the MAD whose module
made it.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from .errors import MadError
from .events import Memory, Profile, Sample

if TYPE_CHECKING:
    from .discovery import MADModule
    from .hub import EventHub
    from .supervisor import MADRunner


class Observed(Protocol):
    """What resource figures are read from: the MADs' runners and modules, and the hub they are written to."""

    hub: EventHub
    runners: dict[str, MADRunner]
    modules: list[MADModule]

PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = ctypes.c_ulong(-1).value
_WAITING = re.compile(r"^\s*\S*select \(.*selectors\.py")
"""The innermost frame of an event loop waiting in its selector."""
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


class Sampler:
    """Writes a `sample` event every interval: each MAD's figures since the last one, and the process's."""

    def __init__(self, eco: Observed, interval: float = 1.0) -> None:
        self.eco = eco
        self.interval = interval
        self.process = psutil.Process()
        self._own: dict[int, psutil.Process] = {}
        """The processes of isolated MADs, by pid (cpu_percent compares with the previous reading of the same one)."""
        self._last: dict[str, dict[str, float]] = {}
        self._last_time = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.samples = 0

    def start(self) -> None:
        self.process.cpu_percent(None)
        self._take_baseline()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mad:sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _take_baseline(self) -> None:
        self._last = {name: r.account.snapshot() for name, r in self.eco.runners.items()}
        for runner in self.eco.runners.values():
            if runner.placement == "isolated":
                self._own_process(runner.pid)
        self._last_time = time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()

    def sample(self) -> dict[str, Any]:
        """Figures since the previous sample; also emitted as a `sample` event."""
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-6)
        mads: dict[str, Any] = {}
        for name, runner in self.eco.runners.items():
            acc = runner.account.snapshot()
            prev = self._last.get(name, {})

            def delta(key: str) -> float:
                return acc.get(key, 0) - prev.get(key, 0)

            mads[name] = {
                "state": runner.state.value,
                "cpu_percent": round(100 * delta("cpu_seconds") / elapsed, 2),
                "cpu_seconds": round(acc["cpu_seconds"], 6),
                "wall_seconds": round(acc["wall_seconds"], 6),
                "messages_in_per_s": round(delta("messages_in") / elapsed, 2),
                "messages_out_per_s": round(delta("messages_out") / elapsed, 2),
                "messages_in": acc["messages_in"], "messages_out": acc["messages_out"],
                "tool_calls": acc["tool_calls"], "mailbox_depth": len(runner.mailbox),
                "llm_calls": acc["llm_calls"], "tokens": acc["tokens_in"] + acc["tokens_out"],
                "cost": round(acc["cost"], 6), "errors": acc["errors"], "crashes": acc["crashes"],
            }
            if runner.placement == "isolated":
                mads[name].update(self._own_process(runner.pid))
            self._last[name] = acc
        self._last_time = now
        alive = {figures.get("pid") for figures in mads.values()}
        for pid in [pid for pid in self._own if pid not in alive]:
            del self._own[pid]
        with self.process.oneshot():
            process = {"cpu_percent": self.process.cpu_percent(None), "rss": self.process.memory_info().rss,
                       "threads": self.process.num_threads()}
        self.samples += 1
        self.eco.hub.emit(Sample(interval_s=round(elapsed, 3), process=process, mads=mads))
        return {"process": process, "mads": mads}


    def _own_process(self, pid: int | None) -> dict[str, Any]:
        """An isolated MAD's figures from its own process: its CPU (all of it is the MAD's) and its RSS."""
        figures: dict[str, Any] = {"placement": "isolated", "pid": pid, "own_process": True}
        if pid is None:
            return figures
        process = self._own.get(pid)
        try:
            if process is None:
                process = self._own[pid] = psutil.Process(pid)
                process.cpu_percent(None)  # the first reading only starts the count
            with process.oneshot():
                times = process.cpu_times()
                figures.update(cpu_percent=round(process.cpu_percent(None), 2),
                               cpu_seconds=round(times.user + times.system, 6), rss=process.memory_info().rss)
        except psutil.Error:
            self._own.pop(pid, None)
        return figures


def py_spy_path() -> str | None:
    """The py-spy binary beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def allow_tracer() -> Callable[[], None]:
    """With ptrace_scope=1 a child may not trace its parent unless the parent allows it (PR_SET_PTRACER)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY), 0, 0, 0)
    return lambda: libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(0), 0, 0, 0)


def mad_module_files(eco: Observed) -> dict[str, str]:
    """Each MAD module's real file path, and the MAD it defines."""
    module_files: dict[str, str] = {}
    for module in eco.modules:
        for cls in module.mads:
            module_files[os.path.realpath(module.path)] = cls.name
    for runner in eco.runners.values():
        source = sys.modules.get(runner.cls.__module__)
        path = getattr(source, "__file__", None)
        if path:
            module_files.setdefault(os.path.realpath(path), runner.name)
    return module_files


def attribute(collapsed: str, module_files: dict[str, str], top: int = 10, owner: str = "kernel") -> dict[str, Any]:
    """Attribute py-spy's collapsed stacks to MADs: the innermost frame in a MAD module wins, else `owner`."""
    default = owner
    samples: Counter[str] = Counter()
    functions: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        if default != "kernel" and frames and _WAITING.search(frames[-1]):
            continue  # an isolated MAD's event loop waiting for the core: the process idles, nothing is spent
        owner, where = default, frames[-1] if frames else "?"
        for frame in reversed(frames):
            match = _FRAME.match(frame.strip())
            if match is None:
                continue
            mad = module_files.get(os.path.realpath(match["file"])) or module_files.get(match["file"])
            if mad is not None:
                owner, where = mad, f"{match['func']} ({Path(match['file']).name}:{match['line'] or '?'})"
                break
        else:
            match = _FRAME.match(frames[-1].strip()) if frames else None
            if match is not None:
                where = f"{match['func']} ({Path(match['file']).name}:{match['line'] or '?'})"
        samples[owner] += count
        functions[owner][where] += count
        total += count
    return {
        "samples": total,
        "mads": {
            mad: {"samples": n, "share": round(n / total, 4) if total else 0.0,
                  "top": [{"function": f, "samples": c} for f, c in functions[mad].most_common(top)]}
            for mad, n in samples.most_common()
        },
    }


async def profile(eco: Observed, seconds: float,
                  progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None,
                  rate: int = 200) -> dict[str, Any]:
    """Sample the ecosystem with py-spy, each isolated MAD's own process too; top functions per MAD, recorded.

    The core's samples go to the MAD whose module is on the stack (kernel otherwise); every sample
    of an isolated MAD's process is that MAD's.
    """
    if not 0 < seconds <= 600:
        raise MadError(f"seconds must be between 0 and 600, got {seconds:g}")
    binary = py_spy_path()
    if binary is None:
        raise MadError("py-spy is not installed (pip install py-spy); in-process accounting goes on")
    module_files = mad_module_files(eco)
    own = {runner.name: runner.pid for runner in eco.runners.values()
           if runner.placement == "isolated" and runner.pid is not None}
    with tempfile.TemporaryDirectory(prefix="mad-profile-") as folder:
        restore = allow_tracer()
        try:
            recordings = [asyncio.ensure_future(_record(binary, pid, seconds, rate, Path(folder) / f"{name}.txt"))
                          for name, pid in [("", os.getpid()), *own.items()]]
            started = time.monotonic()
            waiter = asyncio.ensure_future(asyncio.gather(*recordings))
            while not waiter.done():
                done, _ = await asyncio.wait({waiter}, timeout=1.0)
                if not done and progress is not None:
                    elapsed = time.monotonic() - started
                    await progress(min(elapsed, seconds), seconds, f"sampling {elapsed:.0f}/{seconds:g} s")
            stacks = waiter.result()
        finally:
            restore()
    result = attribute(stacks[0] or "", module_files)
    processes = dict(own)
    files = {name: path for path, name in module_files.items()}
    for (name, _), text in zip(own.items(), stacks[1:]):
        if text is not None:
            mine = {files[name]: name} if name in files else {}
            result["mads"][name] = attribute(text, mine, owner=name)["mads"].get(name, {"samples": 0, "top": []})
    _reshare(result)
    result["seconds"] = seconds
    if processes:
        result["processes"] = processes
    eco.hub.emit(Profile(**result))
    return result


async def _record(binary: str, pid: int, seconds: float, rate: int, output: Path) -> str | None:
    """py-spy's raw stacks of one process; MadError for the core's own failure, None for a child's."""
    proc = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
        "--format", "raw", "--nonblocking", "--output", str(output),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode == 0 and output.exists():
        return output.read_text(encoding="utf-8", errors="replace")
    if pid != os.getpid():  # an isolated MAD's process that ended meanwhile: the rest of the profile stands
        return None
    reason = (err or b"").decode(errors="replace").strip().splitlines()
    detail = reason[-1] if reason else f"exit status {proc.returncode}"
    if "permission" in detail.lower() or "ptrace" in detail.lower() or "operation not permitted" in detail.lower():
        raise MadError(f"py-spy cannot attach ({detail}): run as root, or allow ptrace "
                       "(sysctl kernel.yama.ptrace_scope=1 or lower, or CAP_SYS_PTRACE); "
                       "in-process accounting goes on")
    raise MadError(f"py-spy failed: {detail}; in-process accounting goes on")


def _reshare(result: dict[str, Any]) -> None:
    """Totals and shares over every process sampled, biggest first."""
    mads = result["mads"]
    total = sum(figures["samples"] for figures in mads.values())
    result["samples"] = total
    result["mads"] = {name: {**figures, "share": round(figures["samples"] / total, 4) if total else 0.0}
                      for name, figures in sorted(mads.items(), key=lambda item: -item[1]["samples"])}


MEMORY_FRAMES = 32
"""Frames kept per allocation: deep enough to reach the MAD's own code from inside the library it called."""


def attribute_memory(snapshot: tracemalloc.Snapshot, module_files: dict[str, str],
                     top: int = 10) -> dict[str, Any]:
    """Live allocations per MAD: the innermost frame in a MAD module owns a block, else kernel."""
    owners: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    sites: dict[str, Counter[str]] = defaultdict(Counter)
    blocks_at: dict[str, Counter[str]] = defaultdict(Counter)
    owner_of: dict[str, str | None] = {}
    for trace in snapshot.traces:
        frames = trace.traceback  # oldest first
        owner, where = "kernel", None
        for frame in reversed(frames):
            mad = owner_of.get(frame.filename, "")
            if mad == "":
                mad = owner_of[frame.filename] = (module_files.get(frame.filename)
                                                  or module_files.get(os.path.realpath(frame.filename)))
            if mad is not None:
                owner, where = mad, f"{Path(frame.filename).name}:{frame.lineno}"
                break
        if where is None:
            inner = frames[-1] if len(frames) else None
            where = f"{Path(inner.filename).name}:{inner.lineno}" if inner is not None else "?"
        figures = owners[owner]
        figures[0] += trace.size
        figures[1] += 1
        sites[owner][where] += trace.size
        blocks_at[owner][where] += 1
    total = sum(figures[0] for figures in owners.values())
    ranked = sorted(owners.items(), key=lambda item: item[1][0], reverse=True)
    return {
        "bytes": total,
        "mads": {
            mad: {"bytes": size, "blocks": blocks, "share": round(size / total, 4) if total else 0.0,
                  "top": [{"where": where, "bytes": n, "blocks": blocks_at[mad][where]}
                          for where, n in sites[mad].most_common(top)]}
            for mad, (size, blocks) in ranked
        },
    }


async def memory(eco: Observed, seconds: float,
                 progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None
                 ) -> dict[str, Any]:
    """What each MAD holds of the memory allocated while tracing; recorded as a `memory` event.

    When tracemalloc is already on (PYTHONTRACEMALLOC=32 at start) the reading covers every
    allocation still alive since the start; otherwise tracing runs for `seconds` only, so the
    reading is what each MAD allocated in that window and still holds (growth, leaks).
    """
    if not 0 < seconds <= 600:
        raise MadError(f"seconds must be between 0 and 600, got {seconds:g}")
    since_start = tracemalloc.is_tracing()
    if not since_start:
        tracemalloc.start(MEMORY_FRAMES)
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            if progress is not None:
                await progress(elapsed, seconds, f"tracing allocations {elapsed:.0f}/{seconds:g} s")
            await asyncio.sleep(min(1.0, seconds - elapsed))
        snapshot = tracemalloc.take_snapshot()
        overhead = tracemalloc.get_tracemalloc_memory()
    finally:
        if not since_start:
            tracemalloc.stop()
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    result = await asyncio.to_thread(attribute_memory, snapshot, mad_module_files(eco))
    result.update(seconds=seconds, since="start" if since_start else "window", tracing_overhead=overhead)
    eco.hub.emit(Memory(**result))
    return result
