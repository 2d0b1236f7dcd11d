"""The figure registry and runner: each figure is a median over rounds, against a baseline from the same run.

A figure module registers a measurement with `@figure`:

    @figure("bus_throughput", unit="messages/s", target="ratio >= 0.1", n=20_000, quick_n=5_000)
    async def bus_throughput(n: int) -> Sample:
        ...  # one round: measure the thing and its baseline with the same n
        return Sample(value, baseline)

A target may join several conditions with `;`, all of which must hold: `"ratio <= 1.5; value < 2"`.

The harness calls the function once to warm up, then `rounds` times, and reports the median
value, the median baseline and ratio = value / baseline as
`{"value": float, "unit": str, "baseline": float, "ratio": float}`.
"""
from __future__ import annotations

import gc
import inspect
import math
import operator
import re
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Union

FIELDS = ("value", "unit", "baseline", "ratio")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq,
}
_TARGET = re.compile(r"^\s*(value|baseline|ratio)\s*(<=|>=|<|>|==)\s*([-+0-9.eE_]+)\s*$")


@dataclass(frozen=True, slots=True)
class Sample:
    """One round of a figure: the measured value and the baseline measured beside it."""

    value: float
    baseline: float


Measure = Callable[[int], Union[Sample, Awaitable[Sample]]]


@dataclass(frozen=True)
class Condition:
    """One condition on a result, such as `ratio >= 0.1` or `value < 1`."""

    text: str
    field: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _TARGET.match(text)
        if match is None:
            raise ValueError(f"a target reads `<value|baseline|ratio> <op> <number>`, not {text!r}")
        return cls(text.strip(), match.group(1), match.group(2), float(match.group(3).replace("_", "")))

    def met(self, result: dict[str, Any]) -> bool:
        return _OPS[self.op](float(result[self.field]), self.bound)


@dataclass(frozen=True)
class Target:
    """What a result is held to: one condition, or several joined by `;` that must all hold."""

    text: str
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str) -> Target:
        conditions = tuple(Condition.parse(part) for part in text.split(";"))
        return cls("; ".join(c.text for c in conditions), conditions)

    @property
    def field(self) -> str:
        return self.conditions[0].field

    @property
    def op(self) -> str:
        return self.conditions[0].op

    @property
    def bound(self) -> float:
        return self.conditions[0].bound

    def met(self, result: dict[str, Any]) -> bool:
        return all(c.met(result) for c in self.conditions)

    def missed(self, result: dict[str, Any]) -> list[str]:
        """The conditions the result does not meet."""
        return [c.text for c in self.conditions if not c.met(result)]


@dataclass
class Figure:
    """A registered measurement, how many items a round handles, and what it is held to."""

    name: str
    unit: str
    measure: Measure
    n: int
    quick_n: int
    target: Target | None = None
    goal: Target | None = None
    """The architecture's figure, printed beside the result but not checked."""
    description: str = ""


@dataclass
class Registry:
    """Figures by name, in the order they were registered."""

    figures: dict[str, Figure] = field(default_factory=dict)

    def figure(self, name: str, *, unit: str, target: str | None = None, goal: str | None = None,
               n: int = 1000, quick_n: int | None = None) -> Callable[[Measure], Measure]:
        """Register the decorated function (sync or async, `(n) -> Sample`) as the figure `name`."""

        def register(fn: Measure) -> Measure:
            if name in self.figures:
                raise ValueError(f"figure {name!r} is registered twice")
            self.figures[name] = Figure(
                name, unit, fn, n, quick_n if quick_n is not None else n,
                Target.parse(target) if target else None, Target.parse(goal) if goal else None,
                inspect.cleandoc(fn.__doc__ or "").split("\n\n", 1)[0].replace("\n", " "),
            )
            return fn

        return register

    def select(self, names: list[str] | None) -> list[Figure]:
        """The named figures (all when none are named); ValueError names the unknown ones."""
        if not names:
            return list(self.figures.values())
        unknown = [n for n in names if n not in self.figures]
        if unknown:
            raise ValueError(f"no figure named {', '.join(unknown)}; the figures are {', '.join(self.figures)}")
        return [self.figures[n] for n in dict.fromkeys(names)]


REGISTRY = Registry()
figure = REGISTRY.figure


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def _round(fn: Measure, n: int) -> Sample:
    gc.collect()
    sample = fn(n)
    if inspect.isawaitable(sample):
        sample = await sample
    if not isinstance(sample, Sample):
        raise TypeError(f"a figure returns a Sample, not {type(sample).__name__}")
    return sample


async def measure(fig: Figure, *, rounds: int, n: int, warmup: bool = True) -> dict[str, Any]:
    """Run one figure: a warm-up round, then `rounds` rounds; the medians and their ratio."""
    if warmup:
        await _round(fig.measure, max(1, min(n, fig.quick_n) // 10))
    samples = [await _round(fig.measure, n) for _ in range(max(1, rounds))]
    value = float(statistics.median(s.value for s in samples))
    baseline = float(statistics.median(s.baseline for s in samples))
    ratio = value / baseline if baseline else math.inf
    return {"value": value, "unit": fig.unit, "baseline": baseline, "ratio": ratio}


@dataclass
class Settings:
    """How hard to measure: quick or full, the rounds per figure, and an optional fixed n."""

    quick: bool = False
    rounds: int | None = None
    n: int | None = None

    def rounds_for(self) -> int:
        return self.rounds if self.rounds is not None else (5 if self.quick else 9)

    def n_for(self, fig: Figure) -> int:
        return self.n if self.n is not None else (fig.quick_n if self.quick else fig.n)


async def run_figures(figures: list[Figure], settings: Settings) -> dict[str, dict[str, Any]]:
    """Measure each figure in turn, in this event loop."""
    results: dict[str, dict[str, Any]] = {}
    for fig in figures:
        results[fig.name] = await measure(fig, rounds=settings.rounds_for(), n=settings.n_for(fig))
    return results


def failures(figures: list[Figure], results: dict[str, dict[str, Any]]) -> list[str]:
    """The names of figures whose target is not met."""
    return [f.name for f in figures if f.target is not None and f.name in results
            and not f.target.met(results[f.name])]


def _num(x: float) -> str:
    if x == 0 or math.isinf(x) or math.isnan(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.4g}"


def _verdict(target: Target, result: dict[str, Any]) -> str:
    missed = target.missed(result)
    if not missed:
        return "pass"
    return "FAIL" if len(target.conditions) == 1 else f"FAIL: {'; '.join(missed)}"


def table(figures: list[Figure], results: dict[str, dict[str, Any]]) -> str:
    """The results as a readable table, then each figure's architecture goal when it has one."""
    head = ("figure", "value", "unit", "baseline", "ratio", "target", "")
    rows = [head]
    for fig in figures:
        r = results.get(fig.name)
        if r is None:
            continue
        verdict = "" if fig.target is None else _verdict(fig.target, r)
        rows.append((fig.name, _num(r["value"]), r["unit"], _num(r["baseline"]), _num(r["ratio"]),
                     fig.target.text if fig.target else "-", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    right = {1, 3, 4}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths if w).rstrip())
    goals = []
    for fig in figures:
        r = results.get(fig.name)
        if r is None or fig.goal is None:
            continue
        for goal in fig.goal.conditions:
            share = r[goal.field] / goal.bound if goal.bound else math.inf
            verdict = "met" if goal.met(r) else "not met"
            goals.append(f"  {fig.name}: {_num(r[goal.field])} {r['unit']} against the architecture's "
                         f"{goal.text} ({share:.2f}x of it): {verdict}")
    if goals:
        lines += ["", "architecture figures (not checked):", *goals]
    return "\n".join(lines)
