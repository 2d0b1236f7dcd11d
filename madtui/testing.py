"""A recording as a regression test: what `mad sessions export ID --format pytest` writes, and what it runs.

The exported file holds one test per recorded input (a human message or a call from outside).
The recording is re-run once per test module against the current code (`madtui.rerun`: the
same starting state, LLM answers served from the recording); each test then checks that its
input's replies and tool results, MAD by MAD, are what the recording holds (ids, times and
durations normalised as `mad rerun` does). A failure names the input, the MAD and the first
event that differs, recorded against now.
"""
from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mads.kernel.errors import UsageError
from mads.kernel.journal import reader

from .diff import Normaliser, owner, step
from .rerun import Input, external_inputs, rerun

CHECKED = ("message", "tool_result")
"""What each test asserts: the replies and the tool results."""


def _per_mad(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each MAD's normalised replies and tool results among these events."""
    norms: dict[str, Normaliser] = {}
    per_mad: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        mad = owner(event)
        if event["kind"] not in CHECKED or not mad or mad in ("human", "kernel"):
            continue
        per_mad.setdefault(mad, []).append(norms.setdefault(mad, Normaliser()).value(step(event)))
    return per_mad


def _windows(path: Path, inputs: list[Input]) -> list[dict[str, list[dict[str, Any]]]]:
    """For each input, its effects in the recording (from where it began to where the next one began)."""
    events = list(reader.read_events(path, kind=list(CHECKED)))
    found = []
    for index, item in enumerate(inputs):
        until = inputs[index + 1].start if index + 1 < len(inputs) else None
        found.append(_per_mad([e for e in events if e["seq"] >= item.start and (until is None or e["seq"] < until)]))
    return found


def describe(item: Input) -> str:
    if item.kind == "send":
        return f"{item.caller}: {item.content}"
    if item.kind == "call":
        return f"{item.caller} calls {item.tool} {json.dumps(item.arguments, ensure_ascii=False)}"
    return f"{item.tool} {json.dumps(item.arguments)}"


def test_name(number: int, item: Input) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", describe(item).lower()).strip("_")[:50].rstrip("_")
    return f"test_{number:03d}_{words or item.kind}"


@dataclass
class Rerun:
    """The recording and its re-run, input by input."""

    source: Path
    inputs: list[Input]
    recorded: list[dict[str, list[dict[str, Any]]]]
    now: list[dict[str, list[dict[str, Any]]]]

    def check(self, number: int) -> None:
        """AssertionError naming the MAD and the first event that differs for input `number` (1-based)."""
        index = number - 1
        item = self.inputs[index]
        expected = self.recorded[index]
        got = self.now[index] if index < len(self.now) else {}
        for mad in sorted(set(expected) | set(got)):
            a, b = expected.get(mad, []), got.get(mad, [])
            for position in range(max(len(a), len(b))):
                left = a[position] if position < len(a) else "<no more events>"
                right = b[position] if position < len(b) else "<no more events>"
                if left != right:
                    raise AssertionError(
                        f"input #{number} ({describe(item)}): {mad} differs at its event {position + 1}\n"
                        f"  recorded: {_short(left)}\n  now:      {_short(right)}")


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RecordedSession:
    """A recording to test the current code against; `rerun()` re-runs it once (cache it in a module fixture)."""

    def __init__(self, path: Path | str, mad_path: list[Path] | None = None) -> None:
        self.path = Path(path)
        self.mad_path = mad_path
        self.inputs = external_inputs(self.path)

    def rerun(self) -> Rerun:
        with tempfile.TemporaryDirectory(prefix="mad-pytest-") as folder:
            result = asyncio.run(rerun(self.path, sessions=Path(folder), mad_path=self.mad_path,
                                       compare_to_source=False))
        return Rerun(self.path, self.inputs, _windows(self.path, self.inputs),
                     [_per_mad(effects) for effects in result.effects])


TEMPLATE = '''"""Regression tests from the recording {session} ({count} inputs), by `mad sessions export --format pytest`.

Each test re-runs the recording against the current code (once for the whole file: same starting
state, LLM answers served from the recording) and asserts that input's replies and tool results.
Run: pytest {file}
"""
from pathlib import Path

import pytest

from madtui.testing import RecordedSession

RECORDING = {recording}
session = RecordedSession(RECORDING)


@pytest.fixture(scope="module")
def rerun():
    return session.rerun()

{tests}'''


def export_pytest(source: Path, output: Path, *, copy: bool = True) -> int:
    """Write the test file (and the recording beside it, unless `copy` is False); returns how many tests."""
    inputs = external_inputs(source)
    if not inputs:
        raise UsageError(f"{source.name} has no inputs to test (human messages or calls from outside)")
    if copy:
        beside = output.with_suffix(".db")
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
                closing(sqlite3.connect(beside)) as dst:
            src.backup(dst)
        recording = f'Path(__file__).with_name("{beside.name}")'
    else:
        recording = f"Path({str(source.resolve())!r})"
    tests = []
    seen: set[str] = set()
    for number, item in enumerate(inputs, 1):
        name = test_name(number, item)
        while name in seen:
            name += "_"
        seen.add(name)
        doc = describe(item).replace('"""', "'''").replace("\\", "\\\\")
        tests.append(f'\ndef {name}(rerun):\n    """#{number} {doc}"""\n    rerun.check({number})\n\n')
    output.write_text(TEMPLATE.format(session=source.stem, count=len(inputs), file=output.name,
                                      recording=recording, tests="".join(tests)).rstrip() + "\n", encoding="utf-8")
    return len(tests)
