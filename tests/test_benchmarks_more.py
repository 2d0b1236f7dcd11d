"""Smoke tests of the reload, TUI, start and isolation figures: each runs once, small, and reports value, unit,
baseline and ratio."""
from __future__ import annotations

import math

import pytest

from benchmarks import load_figures, measure
from benchmarks import regen, tui
from tests.helpers import needs_redis

FIGURES = {
    "reload_latency": ("ms", "value < 250"),
    "reload_latency_p95": ("ms", "value < 500"),
    "tui_first_paint": ("s", "value < 2"),
    "tui_keypress_latency": ("ms", "value < 100"),
    "tui_scroll_100k": ("ms", "value < 100"),
    "run_ready": ("s", "value < 1.5"),
    "tui_start_paint": ("s", "value < 2"),
    "isolated_call_roundtrip": ("ms", "value < 1"),
    "isolated_start": ("s", "value < 1"),
    "isolation_neighbour_p99": ("ms", "ratio <= 1.5"),
    "regen_gate_time": ("s", "value < 10"),
    "lppm_hit_rate": ("share", "value >= 0.8"),
    "lppm_false_hits": ("traps served", "value == 0"),
    "lppm_route_p50": ("ms", "value < 5"),
    "tokens_saved": ("tokens", "ratio <= 0.5"),
    "cet_token_ratio": ("tokens", "ratio <= 0.5"),
    "cet_fact_recall": ("share", "value == 1"),
    "break_overhead": ("s", "ratio <= 1.2"),
    "stream_to_screen": ("ms", "value < 50"),
    "stream_overhead": ("s", "ratio <= 1.2"),
}


def test_the_figures_are_registered_with_their_units_and_targets() -> None:
    figures = load_figures().figures
    for name, (unit, target) in FIGURES.items():
        assert figures[name].unit == unit
        assert figures[name].target is not None and figures[name].target.text == target


@pytest.mark.parametrize(("name", "n"), [
    ("reload_latency", 2), ("reload_latency_p95", 2), ("tui_first_paint", 1), ("tui_keypress_latency", 5),
    ("tui_scroll_100k", 5), ("run_ready", 1), ("tui_start_paint", 1),
    ("isolated_call_roundtrip", 20), ("isolated_start", 1), ("isolation_neighbour_p99", 20), ("regen_gate_time", 3),
    ("cet_token_ratio", 40), ("break_overhead", 200), ("stream_to_screen", 2),
])
async def test_each_figure_reports_value_unit_baseline_and_ratio(name: str, n: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui, "SCROLL_LINES", 1_000)
    monkeypatch.setattr(regen, "RECORDINGS", 2)
    result = await measure(load_figures().figures[name], rounds=1, n=n, warmup=False)
    assert set(result) == {"value", "unit", "baseline", "ratio"}
    assert result["unit"] == FIGURES[name][0]
    assert result["value"] > 0 and result["baseline"] > 0
    assert math.isclose(result["ratio"], result["value"] / result["baseline"])


def test_scroll_positions_go_from_the_top_to_the_end_and_back_in_steps_of_at_least_a_page() -> None:
    assert tui.scroll_positions(4, page=10, last=100) == [25, 50, 75, 100]
    assert tui.scroll_positions(6, page=36, last=64) == [36, 64, 28, 0, 36, 64]


@needs_redis
@pytest.mark.parametrize(("name", "n", "unit"), [("redis_bus_throughput", 200, "messages/s"),
                                                  ("redis_bus_p99", 100, "ms"), ("node_failover", 1, "s")])
async def test_the_distributed_figures_run_against_a_redis_of_their_own(name: str, n: int, unit: str) -> None:
    result = await measure(load_figures().figures[name], rounds=1, n=n, warmup=False)
    assert result["unit"] == unit and result["value"] > 0 and result["baseline"] > 0
