"""The command line: `python -m benchmarks [--quick] [--json] [--check] [--rounds R] [--n N] [NAME ...]`."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from typing import Any

from .harness import Registry, Settings, failures, measure, table


def parser(names: list[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the figures the architecture holds itself to, each against a baseline "
                    "measured in the same run (ratio = value / baseline; medians of several rounds).",
        epilog=f"figures: {', '.join(names)}",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="run only these figures")
    p.add_argument("--quick", action="store_true", help="fewer items and rounds (the whole suite in well under a minute)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by figure name, nothing else")
    p.add_argument("--check", action="store_true", help="exit 1 when a figure misses its target")
    p.add_argument("--rounds", type=int, default=None, help="rounds per figure (default 5 quick, 9 full)")
    p.add_argument("--n", type=int, default=None, help="items per round for every figure (default: each figure's own)")
    return p


async def _run(registry: Registry, args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[str]]:
    figures = registry.select(args.names)
    settings = Settings(quick=args.quick, rounds=args.rounds, n=args.n)
    results: dict[str, dict[str, Any]] = {}
    broken: list[str] = []
    chatty = sys.stderr.isatty()
    for fig in figures:
        started = time.perf_counter()
        if chatty:
            print(f"measuring {fig.name} ...", end="", file=sys.stderr, flush=True)
        try:
            results[fig.name] = await measure(fig, rounds=settings.rounds_for(), n=settings.n_for(fig))
        except Exception as exc:
            broken.append(fig.name)
            print(f"\n{fig.name} could not be measured: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            continue
        if chatty:
            print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return results, broken


def main(argv: list[str] | None = None, registry: Registry | None = None) -> int:
    """Run the figures and print them; 0, or 1 when a figure broke (or missed its target under --check)."""
    if registry is None:
        from . import load_figures
        registry = load_figures()
    args = parser(list(registry.figures)).parse_args(argv)
    try:
        figures = registry.select(args.names)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.rounds is not None and args.rounds < 1 or args.n is not None and args.n < 1:
        print("error: --rounds and --n must be at least 1", file=sys.stderr)
        return 2
    results, broken = asyncio.run(_run(registry, args))
    if args.json:
        print(json.dumps(results))
    else:
        print(table(figures, results))
    missed = failures(figures, results)
    if missed and not args.json:
        print(f"\ntargets missed: {', '.join(missed)}")
    if broken:
        return 1
    return 1 if args.check and missed else 0
