"""Reload figures: from a MAD module saved on MAD_PATH to its new version serving, with the real watcher.

A round starts an ecosystem watching one folder (`Config(watch=True)`), then saves the module
n times as an editor does (write a temporary file, `os.replace` it over the module) and polls
`probe_ping` until it answers the new version. The baseline is the bare import of the same n
versions saved outside the watched folder (`spec_from_file_location` + `exec_module`), same round.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from mads.kernel import Config, Ecosystem

from .harness import Sample, figure, percentile

PROBE = '''\
"""A MAD that says which version answers: what the reload benchmark saves again and again."""
from mads.kernel import MAD, tool


class Probe(MAD):
    """Answers pings with its version."""

    @tool
    async def ping(self) -> str:
        """Say which version answers."""
        return "{version}"
'''
POLL_SECONDS = 0.002
TIMEOUT_SECONDS = 10.0

_perf = time.perf_counter


def save(path: Path, text: str) -> None:
    """Save as editors do: write a temporary file beside it, then replace the module atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def import_seconds(path: Path, n: int) -> list[float]:
    """Seconds of each bare import of n saved versions of the module file (a fresh module object each time)."""
    seconds = []
    for i in range(1, n + 1):
        save(path, PROBE.format(version=f"v{i}"))
        started = _perf()
        spec = importlib.util.spec_from_file_location(f"_mad_bench_probe_{i}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        seconds.append(_perf() - started)
        sys.modules.pop(spec.name, None)
    return seconds


async def _serving(eco: Ecosystem, version: str) -> None:
    """Return once `probe_ping` answers this version; RuntimeError after the timeout."""
    deadline = _perf() + TIMEOUT_SECONDS
    while True:
        try:
            if await eco.call_tool("probe_ping") == version:
                return
        except Exception:  # the MAD may be between versions for a moment
            pass
        if _perf() > deadline:
            raise RuntimeError(f"version {version} was not serving {TIMEOUT_SECONDS:g} s after the save")
        await asyncio.sleep(POLL_SECONDS)


async def _settled(eco: Ecosystem, reloads: int) -> None:
    """Wait until the reloader has finished its `reloads`-th reload (events, tool list), so saves do not overlap."""
    deadline = _perf() + TIMEOUT_SECONDS
    while eco.reloader.reloads < reloads:
        if _perf() > deadline:
            raise RuntimeError(f"the reloader finished {eco.reloader.reloads} reloads of {reloads}")
        await asyncio.sleep(POLL_SECONDS)


async def reload_seconds(n: int) -> tuple[list[float], list[float]]:
    """n saves of a watched module: seconds from each save to its version serving, and bare import seconds."""
    with tempfile.TemporaryDirectory(prefix="mad-bench-") as tmp:
        folder = Path(tmp, "mads")
        folder.mkdir()
        path = folder / "probe.py"
        baseline = import_seconds(Path(tmp, "probe.py"), n)  # outside the watched folder
        save(path, PROBE.format(version="v0"))
        config = Config(home=Path(tmp, "home"), mad_path=[folder], include_package=False, environ={},
                        watch=True, sample_interval=0)
        latencies: list[float] = []
        async with Ecosystem(config) as eco:
            await _serving(eco, "v0")
            for i in range(1, n + 1):
                version = f"v{i}"
                started = _perf()
                save(path, PROBE.format(version=version))
                await _serving(eco, version)
                latencies.append(_perf() - started)
                await _settled(eco, i)
            if eco.reloader.failures:
                raise RuntimeError(f"{eco.reloader.failures} reloads failed")
    return latencies, baseline


@figure("reload_latency", unit="ms", target="value < 250", goal="value < 250", n=20, quick_n=20)
async def reload_latency(n: int) -> Sample:
    """p50 ms from a MAD module saved (temp file + os.replace) in a watched MAD_PATH folder to `probe_ping`
    answering the new version, over n saves in one ecosystem.

    Baseline: the p50 of a bare import of each saved version (spec_from_file_location + exec_module), same round.
    """
    latencies, baseline = await reload_seconds(n)
    return Sample(percentile(latencies, 50) * 1000, percentile(baseline, 50) * 1000)


@figure("reload_latency_p95", unit="ms", target="value < 500", n=20, quick_n=20)
async def reload_latency_p95(n: int) -> Sample:
    """p95 ms of the same saves as reload_latency (its own rounds).

    Baseline: the p95 of the bare imports of each saved version, same round.
    """
    latencies, baseline = await reload_seconds(n)
    return Sample(percentile(latencies, 95) * 1000, percentile(baseline, 95) * 1000)
