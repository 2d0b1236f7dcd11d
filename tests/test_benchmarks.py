"""Smoke tests of the benchmark harness: the figures' shape and the command line's contract, never speed."""
from __future__ import annotations

import json

import pytest

from benchmarks import Registry, Sample, Settings, load_figures, measure, run_figures
from benchmarks.cli import main
from benchmarks.harness import Target, percentile

NAMES = ["bus_throughput", "bus_delivery_p99", "dtr_route_p50", "recording_overhead", "bus_throughput_recorded"]
"""The in-process figures; gateway_roundtrip spawns servers, so it has its own one-round test."""


def _shaped(result: dict) -> None:
    assert set(result) == {"value", "unit", "baseline", "ratio"}
    assert isinstance(result["value"], float) and isinstance(result["baseline"], float)
    assert isinstance(result["unit"], str) and result["unit"]
    assert result["value"] > 0 and result["baseline"] > 0
    assert result["ratio"] == result["value"] / result["baseline"]


async def test_each_figure_reports_value_unit_baseline_and_their_ratio() -> None:
    registry = load_figures()
    results = await run_figures(registry.select(NAMES), Settings(rounds=1, n=20))
    assert list(results) == NAMES
    for result in results.values():
        _shaped(result)


async def test_the_gateway_figure_measures_mad_mcp_and_a_bare_server_over_stdio() -> None:
    figure = load_figures().figures["gateway_roundtrip"]
    result = await measure(figure, rounds=1, n=1, warmup=False)
    _shaped(result)
    assert result["unit"] == "ms" and figure.target is not None and len(figure.target.conditions) == 2


def test_json_mode_prints_one_object_keyed_by_figure_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--rounds", "1", "--n", "10", *NAMES]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out) == sorted(NAMES)
    for result in out.values():
        _shaped(result)


def _fake(target: str) -> Registry:
    registry = Registry()

    @registry.figure("fake", unit="things/s", target=target, n=3)
    def fake(n: int) -> Sample:
        return Sample(2.0, 4.0)

    return registry


def test_a_missed_target_fails_only_under_check(capsys: pytest.CaptureFixture[str]) -> None:
    registry = _fake("ratio >= 1")
    assert main(["--rounds", "1"], registry) == 0
    table = capsys.readouterr().out
    assert "fake" in table and "FAIL" in table and "ratio >= 1" in table
    assert main(["--check", "--rounds", "1"], registry) == 1
    assert main(["--check", "--rounds", "1"], _fake("ratio >= 0.5")) == 0


def test_an_unknown_figure_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no_such_figure"], _fake("ratio >= 1")) == 2
    assert "no figure named no_such_figure" in capsys.readouterr().err


def test_targets_read_a_field_an_operator_and_a_bound() -> None:
    target = Target.parse("value < 1")
    assert target.met({"value": 0.5}) and not target.met({"value": 1.0})
    with pytest.raises(ValueError):
        Target.parse("speed is good")


def test_a_target_of_several_conditions_holds_only_when_all_do(capsys: pytest.CaptureFixture[str]) -> None:
    target = Target.parse("ratio <= 1.5;value < 2")
    assert target.text == "ratio <= 1.5; value < 2"
    assert target.met({"value": 1.0, "ratio": 1.2})
    assert target.missed({"value": 3.0, "ratio": 1.2}) == ["value < 2"]
    assert not target.met({"value": 1.0, "ratio": 2.0})
    with pytest.raises(ValueError):
        Target.parse("ratio <= 1.5; fast")
    assert main(["--check", "--rounds", "1"], _fake("ratio <= 1; value < 1")) == 1
    assert "FAIL: value < 1" in capsys.readouterr().out
    assert main(["--check", "--rounds", "1"], _fake("ratio <= 1; value < 3")) == 0


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(map(float, range(101))), 99) == 99.0
