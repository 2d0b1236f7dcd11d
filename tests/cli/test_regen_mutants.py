"""The gate against a few mutants of Horace and its rewrites (the whole set of 30 is the regen_mutants_caught figure).

The mutation machinery and its independent oracle live in benchmarks/mutation.py.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks.mutation import evaluate, record_horace


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return asyncio.run(record_horace(tmp_path_factory.mktemp("horace")))


async def test_the_gate_catches_the_behaviour_changing_mutants_of_horace_and_passes_every_rewrite(
        session: Path, tmp_path: Path) -> None:
    result = await evaluate(session, tmp_path, count=8, rewrite_count=5)
    summary = {k: v for k, v in result.items() if not isinstance(v, list)}
    print("regen mutation set:", json.dumps(summary))
    assert result["mutants"] == 8 and result["rewrites"] == 5 and result["behaviour_changing"] >= 5, summary
    assert result["caught"] == result["behaviour_changing"], json.dumps(result["missed"], indent=1)
    assert not result["false_alarms"], json.dumps(result["false_alarms"], indent=1)
