"""The marked examples of docs/authoring.md run and print what the guide says they print.

An example is a fenced block whose first line is `# example: NAME` (`// example: NAME FILE` in a
JSON Lines script): the block is written as `my_mads/NAME.py`, or as FILE when the marker names one,
in a folder of the example's own. Every `console` block after it, up to the next example, holds its
commands (`$ mad ...`, with `NAME=value` settings before `mad`, or `$ echo $?`) and below each the lines
it prints: stdout, and its one-line error from stderr. `...` in a line stands for any text.

The steps of one example run in order in ONE subprocess (one import of the CLI, each command invoked
in it as `mad` runs it) with MAD_HOME, MAD_SESSIONS and MAD_PATH in the example's temporary folder;
the examples run side by side.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

GUIDE = ROOT / "docs" / "authoring.md"
MARKER = re.compile(r"^(?:#|//) example: (?P<name>[a-z][a-z0-9_]*)(?: (?P<file>[\w./-]+))?\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SETTING = re.compile(r"^[A-Z][A-Z0-9_]*=")
ERROR_LINE = "mad: error:"
MASTER_KEY = "ab" * 32
TIMEOUT = 120

DRIVER = r'''
import json, sys
from pathlib import Path

from click.testing import CliRunner

from madtui.cli import cli

steps, results = json.loads(Path(sys.argv[1]).read_text()), []
runner = CliRunner()
for step in steps:
    if step["kind"] == "file":
        Path(step["path"]).parent.mkdir(parents=True, exist_ok=True)
        Path(step["path"]).write_text(step["text"], encoding="utf-8")
    elif step["kind"] == "mad":
        done = runner.invoke(cli, step["args"], env=step["env"])
        crash = done.exception if not isinstance(done.exception, (SystemExit, type(None))) else None
        results.append({"exit": done.exit_code, "stdout": done.stdout, "stderr": done.stderr,
                        "crash": repr(crash) if crash else None})
Path(sys.argv[2]).write_text(json.dumps(results), encoding="utf-8")
'''
"""Runs one example's steps; results go to a file (the MADs' own processes share this one's stdout)."""


@dataclass
class Step:
    kind: str
    """`file` (write text to path), `mad` (run args with env) or `echo` (the last command's exit code)."""
    path: str = ""
    text: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    shown: str = ""
    """The command as the guide shows it."""
    expected: list[str] = field(default_factory=list)


def parse(guide: str) -> dict[str, list[Step]]:
    """Each example's steps, in the order of the guide."""
    examples: dict[str, list[Step]] = {}
    current: str | None = None
    for block in FENCE.finditer(guide):
        body = block["body"]
        marker = MARKER.match(body.split("\n", 1)[0])
        if marker:
            current = marker["name"]
            path = marker["file"] or f"my_mads/{current}.py"
            examples.setdefault(current, []).append(Step("file", path=path, text=body))
        elif block["lang"] == "console":
            assert current is not None, f"a console block before any example cannot be run:\n{body}"
            examples[current] += commands(body)
    return examples


def commands(body: str) -> list[Step]:
    steps: list[Step] = []
    for line in body.splitlines():
        if not line.startswith("$ "):
            assert steps, f"output before any command: {line!r}"
            steps[-1].expected.append(line)
            continue
        shown = line[2:].strip()
        if shown == "echo $?":
            steps.append(Step("echo", shown=shown))
            continue
        words = shlex.split(shown)
        settings = {}
        while words and SETTING.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            settings[name] = value
        assert words[:1] == ["mad"], f"only `mad ...` and `echo $?` run in an example: {shown!r}"
        steps.append(Step("mad", args=words[1:], env=settings, shown=shown))
    return steps


EXAMPLES = parse(GUIDE.read_text(encoding="utf-8"))


def cost(steps: list[Step]) -> int:
    """About how long an example takes: a command starts an ecosystem, `mad regen` several."""
    return sum(3 if s.args[:1] == ["regen"] else 1 for s in steps if s.kind == "mad")


def environment(folder: Path) -> dict[str, str]:
    """The subprocess's environment: none of the caller's MAD_ settings, the example's folders."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAD_")}
    return {**base, "PYTHONPATH": str(ROOT), "MAD_HOME": ".mad", "MAD_SESSIONS": "sessions", "MAD_PATH": "my_mads",
            "MAD_MASTER_KEY": MASTER_KEY}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.Popen[str], Path]]:
    """Every example started at once, each in a folder and a process of its own, the longest first."""
    started = {}
    for name, steps in sorted(EXAMPLES.items(), key=lambda item: -cost(item[1])):
        folder = tmp_path_factory.mktemp(f"example-{name}")
        env = environment(folder)
        plan = [{"kind": s.kind, "path": s.path, "text": s.text, "args": s.args,
                 "env": {**{k: v for k, v in env.items() if k.startswith("MAD_")}, **s.env}} for s in steps]
        (folder / ".steps.json").write_text(json.dumps(plan), encoding="utf-8")
        process = subprocess.Popen([sys.executable, "-c", DRIVER, ".steps.json", ".results.json"], cwd=folder, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started[name] = (process, folder)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def matches(expected: str, actual: str) -> bool:
    """The line as the guide shows it, `...` standing for any text."""
    return re.fullmatch(".*".join(re.escape(part) for part in expected.split("...")), actual) is not None


def check(steps: list[Step], results: list[dict[str, Any]]) -> None:
    commands = [s for s in steps if s.kind == "mad"]
    assert len(results) == len(commands)
    outcome: dict[str, Any] | None = None
    shown = ""
    ran = iter(results)
    for index, step in enumerate(steps):
        if step.kind == "file":
            continue
        if step.kind == "echo":
            assert outcome is not None, "`echo $?` before any command"
            assert step.expected == [str(outcome["exit"])], f"`{shown}` exited {outcome['exit']}"
            continue
        outcome = next(ran)
        shown = step.shown
        printed = outcome["stdout"].splitlines() + [
            line for line in outcome["stderr"].splitlines() if line.startswith(ERROR_LINE)]
        detail = (f"\n$ {shown}\n--- the guide shows:\n" + "\n".join(step.expected) + "\n--- it printed (exit "
                  f"{outcome['exit']}):\n{outcome['stdout']}--- on stderr:\n{outcome['stderr']}")
        assert outcome["crash"] is None, f"`{shown}` raised {outcome['crash']}{detail}"
        assert len(printed) == len(step.expected) and all(map(matches, step.expected, printed)), detail
        echoed = index + 1 < len(steps) and steps[index + 1].kind == "echo"
        if not echoed:  # the exit code shown by `echo $?`, else 0 exactly when no error line is shown
            failed = any(line.startswith(ERROR_LINE) for line in step.expected)
            assert (outcome["exit"] != 0) == failed, f"`{shown}` exited {outcome['exit']}{detail}"


def test_the_guide_marks_a_few_small_examples_each_showing_what_it_prints() -> None:
    assert 4 <= len(EXAMPLES) <= 6, sorted(EXAMPLES)
    head = GUIDE.read_text(encoding="utf-8").split("\n```python\n# example:", 1)[0]
    assert "`# example: NAME`" in head, "the guide explains the marker before its first example"
    for name, steps in EXAMPLES.items():
        assert steps[0].kind == "file", name
        assert any(s.kind == "mad" and s.expected for s in steps), f"{name}: no command shows what it prints"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_an_example_of_the_authoring_guide_runs_as_shown(name: str, runs) -> None:
    process, folder = runs[name]
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"example {name} did not finish within {TIMEOUT} s:\n{stderr}") from None
    assert process.returncode == 0, f"example {name}: the driver failed:\n{stderr}"
    check(EXAMPLES[name], json.loads((folder / ".results.json").read_text(encoding="utf-8")))
